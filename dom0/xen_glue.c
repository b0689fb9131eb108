#include "dom0/xen_glue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xencall.h>
#include <xenforeignmemory.h>
#include <xen/sysctl.h>

_Static_assert(sizeof(struct lull_sysctl_op) == 56, "lull_sysctl_op is 56 bytes as in the patch");
_Static_assert(offsetof(struct lull_sysctl_op, mfn) == 24, "mfn at 24 as in the patch");
_Static_assert(offsetof(struct lull_sysctl_op, dropped) == 48, "dropped at 48 as in the patch");
_Static_assert(sizeof(struct lull_sysctl_op) <= sizeof(((struct xen_sysctl *)0)->u),
	       "fits xen_sysctl.u");

struct lull_xen {
	xc_interface *xch;
	xencall_handle *xcall;
	xenforeignmemory_handle *fmem;
};

int lull_xen_open(struct lull_xen **out)
{
	struct lull_xen *x = calloc(1, sizeof(*x));
	int err;

	if (!x)
		return -ENOMEM;
	x->xch = xc_interface_open(NULL, NULL, 0);
	x->xcall = xencall_open(NULL, 0);
	x->fmem = xenforeignmemory_open(NULL, 0);
	if (!x->xch || !x->xcall || !x->fmem) {
		err = errno ? errno : EIO;
		lull_xen_close(x);
		return -err;
	}
	*out = x;
	return 0;
}

void lull_xen_close(struct lull_xen *x)
{
	if (!x)
		return;
	if (x->fmem)
		xenforeignmemory_close(x->fmem);
	if (x->xcall)
		xencall_close(x->xcall);
	if (x->xch)
		xc_interface_close(x->xch);
	free(x);
}

int lull_xen_cpu_times(struct lull_xen *x, const uint32_t *doms, size_t n, int64_t *out)
{
	xc_domaininfo_t info[128];
	int got = xc_domain_getinfolist(x->xch, 0, 128, info), i;
	size_t k;

	if (got < 0)
		return -errno;
	for (k = 0; k < n; k++)
		out[k] = -1;
	for (i = 0; i < got; i++)
		for (k = 0; k < n; k++)
			if (info[i].domain == doms[k])
				out[k] = (int64_t)info[i].cpu_time;
	return 0;
}

int lull_xen_lull_op(struct lull_xen *x, struct lull_sysctl_op *op)
{
	struct xen_sysctl *buf = xencall_alloc_buffer(x->xcall, sizeof(*buf));
	int rc, err;

	if (!buf)
		return -errno;
	memset(buf, 0, sizeof(*buf));
	buf->cmd = LULL_XEN_SYSCTL_lull_op;
	buf->interface_version = XEN_SYSCTL_INTERFACE_VERSION;
	memcpy(&buf->u, op, sizeof(*op));
	rc = xencall1(x->xcall, __HYPERVISOR_sysctl, (uint64_t)(uintptr_t)buf);
	err = errno;
	if (rc == 0)
		memcpy(op, &buf->u, sizeof(*op));
	xencall_free_buffer(x->xcall, buf);
	return rc == 0 ? 0 : -err;
}

int lull_xen_map(struct lull_xen *x, uint64_t mfn, size_t pages, void **out)
{
	xen_pfn_t *mfns = calloc(pages, sizeof(*mfns));
	int *errs = calloc(pages, sizeof(*errs));
	void *mem = NULL;
	size_t i;
	int rc = 0;

	if (!mfns || !errs) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < pages; i++)
		mfns[i] = (xen_pfn_t)(mfn + i);
	mem = xenforeignmemory_map(x->fmem, DOMID_XEN, PROT_READ | PROT_WRITE, pages, mfns, errs);
	if (!mem) {
		rc = -errno;
		goto out;
	}
	for (i = 0; i < pages; i++)
		if (errs[i]) {
			rc = errs[i] < 0 ? errs[i] : -errs[i];
			xenforeignmemory_unmap(x->fmem, mem, pages);
			mem = NULL;
			goto out;
		}
	*out = mem;
out:
	free(mfns);
	free(errs);
	return rc;
}

void lull_xen_unmap(struct lull_xen *x, void *mem, size_t pages)
{
	xenforeignmemory_unmap(x->fmem, mem, pages);
}
