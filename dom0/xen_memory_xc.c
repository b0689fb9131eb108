#include "dom0/xen_memory_xc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>

_Static_assert(sizeof(xen_pfn_t) == sizeof(uint64_t), "xen_pfn_t is 64-bit on x86-64");

struct lull_xm {
	xc_interface *xch;
	xenforeignmemory_handle *fmem;
};

static int neg_errno(void) { return errno ? -errno : -EIO; }

int lull_xm_open(struct lull_xm **out)
{
	struct lull_xm *x = calloc(1, sizeof(*x));
	int err;

	if (!x)
		return -ENOMEM;
	errno = 0;
	x->xch = xc_interface_open(NULL, NULL, 0);
	x->fmem = xenforeignmemory_open(NULL, 0);
	if (!x->xch || !x->fmem) {
		err = neg_errno();
		lull_xm_close(x);
		return err;
	}
	*out = x;
	return 0;
}

void lull_xm_close(struct lull_xm *x)
{
	if (!x)
		return;
	if (x->fmem)
		xenforeignmemory_close(x->fmem);
	if (x->xch)
		xc_interface_close(x->xch);
	free(x);
}

int lull_xm_dominfo(struct lull_xm *x, uint32_t domid, struct lull_xm_dominfo *out)
{
	xc_domaininfo_t info;
	xen_pfn_t gpfns = 0;
	unsigned int width = 0;
	unsigned long max_mfn = 0;
	int n = xc_domain_getinfolist(x->xch, domid, 1, &info);

	if (n < 0)
		return neg_errno();
	if (n == 0 || info.domain != domid)
		return -ESRCH;
	memset(out, 0, sizeof(*out));
	out->domid = domid;
	out->hvm = !!(info.flags & XEN_DOMINF_hvm_guest);
	out->paused = !!(info.flags & XEN_DOMINF_paused);
	out->dying = !!(info.flags & XEN_DOMINF_dying);
	out->shutdown = !!(info.flags & XEN_DOMINF_shutdown);
	out->shared_info_frame = info.shared_info_frame;
	out->tot_pages = info.tot_pages;
	out->max_pages = info.max_pages;
	out->cpu_time = info.cpu_time;
	if (xc_domain_get_guest_width(x->xch, domid, &width) != 0)
		return neg_errno();
	out->guest_width = width;
	if (xc_domain_maximum_gpfn(x->xch, domid, &gpfns) < 0)
		return neg_errno();
	out->max_gpfn = gpfns;
	if (xc_maximum_ram_page(x->xch, &max_mfn) != 0)
		return neg_errno();
	out->max_mfn = max_mfn;
	return 0;
}

int lull_xm_anchor(struct lull_xm *x, uint32_t domid, uint64_t shared_info_mfn,
		   struct lull_xm_anchor *out)
{
	xen_pfn_t mfn = shared_info_mfn;
	int err = 0;
	shared_info_t *si = xenforeignmemory_map(x->fmem, domid, PROT_READ, 1, &mfn, &err);

	if (!si)
		return neg_errno();
	if (err) {
		xenforeignmemory_unmap(x->fmem, si, 1);
		return err < 0 ? err : -err;
	}
	out->max_pfn = si->arch.max_pfn;
	out->fll = si->arch.pfn_to_mfn_frame_list_list;
	out->p2m_cr3 = si->arch.p2m_cr3;
	out->p2m_vaddr = si->arch.p2m_vaddr;
	out->p2m_generation = si->arch.p2m_generation;
	xenforeignmemory_unmap(x->fmem, si, 1);
	return 0;
}

int lull_xm_read_frame(struct lull_xm *x, uint32_t domid, uint64_t mfn, void *page)
{
	xen_pfn_t m = mfn;
	int err = 0;
	void *p = xenforeignmemory_map(x->fmem, domid, PROT_READ, 1, &m, &err);

	if (!p)
		return neg_errno();
	if (!err)
		memcpy(page, p, XC_PAGE_SIZE);
	xenforeignmemory_unmap(x->fmem, p, 1);
	return err > 0 ? -err : err;
}

int lull_xm_map_at(struct lull_xm *x, uint32_t domid, void *addr, int writable,
		   const uint64_t *mfns, size_t n, int *err)
{
	void *p = xenforeignmemory_map2(x->fmem, domid, addr,
					writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_FIXED, n,
					(const xen_pfn_t *)mfns, err);
	size_t i;

	if (!p)
		return neg_errno();
	if (p != addr) {
		xenforeignmemory_unmap(x->fmem, p, n);
		return -EFAULT;
	}
	for (i = 0; i < n; i++)
		if (err[i] > 0)
			err[i] = -err[i];
	return 0;
}

int lull_xm_pause(struct lull_xm *x, uint32_t domid)
{
	return xc_domain_pause(x->xch, domid) ? neg_errno() : 0;
}

int lull_xm_unpause(struct lull_xm *x, uint32_t domid)
{
	return xc_domain_unpause(x->xch, domid) ? neg_errno() : 0;
}

int lull_xm_destroy(struct lull_xm *x, uint32_t domid)
{
	return xc_domain_destroy(x->xch, domid) ? neg_errno() : 0;
}

int lull_xm_logdirty(struct lull_xm *x, uint32_t domid, int enable)
{
	if (!enable)
		return xc_shadow_control(x->xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0) ?
			       neg_errno() : 0;
	if (xc_shadow_control(x->xch, domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0) == 0)
		return 0;
	/* Not built in (a hypervisor without shadow paging cannot track a PV guest). */
	if (errno == EOPNOTSUPP)
		return -EOPNOTSUPP;
	/* As a PV save does: a domain left in some other shadow mode (e.g. a save that
	 * died) is switched off first, then log-dirty is enabled again. */
	if (xc_shadow_control(x->xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0) != 0)
		return neg_errno();
	return xc_shadow_control(x->xch, domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0) ?
		       neg_errno() : 0;
}

int lull_xm_clean(struct lull_xm *x, uint32_t domid, uint64_t *bitmap, uint64_t pages,
		  uint64_t *dirty_count)
{
	size_t bytes = (size_t)((pages + 63) / 64 * 8);
	int np = (int)((bytes + XC_PAGE_SIZE - 1) / XC_PAGE_SIZE);
	xc_shadow_op_stats_t stats;
	long long rc;
	int err;
	DECLARE_HYPERCALL_BUFFER(uint8_t, bm);

	/* A fresh buffer per call: one call per migration round, and the bitmap of a
	 * 128 MiB guest is one page. */
	bm = xc_hypercall_buffer_alloc_pages(x->xch, bm, np ? np : 1);
	if (!bm)
		return -ENOMEM;
	memset(bm, 0, bytes);
	memset(&stats, 0, sizeof(stats));
	rc = xc_logdirty_control(x->xch, domid, XEN_DOMCTL_SHADOW_OP_CLEAN, HYPERCALL_BUFFER(bm),
				 pages, 0, &stats);
	err = rc < 0 ? neg_errno() : 0;
	if (!err) {
		memcpy(bitmap, bm, bytes);
		if (dirty_count)
			*dirty_count = stats.dirty_count;
	}
	xc_hypercall_buffer_free_pages(x->xch, bm, np ? np : 1);
	return err;
}
