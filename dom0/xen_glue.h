/* xen_glue.h - the few Xen toolstack calls of the lull region (lulld's XenRing, lull-xen-probe), behind a plain C API.
 *
 * Debian's xenctrl.h and xen/sysctl.h need GNU C (anonymous unions, __align8__), so
 * they are compiled here, as C, and the C++ side sees only these functions.
 * Every function returns 0 or a negative errno. */
#ifndef LULL_DOM0_XEN_GLUE_H
#define LULL_DOM0_XEN_GLUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XEN_SYSCTL_lull_op as the patched hypervisor defines it (xen-patches/0001, in
 * xen/include/public/sysctl.h); Debian's headers predate it. Same field order and
 * sizes, checked in xen_glue.c. */
#define LULL_XEN_SYSCTL_lull_op 0x4c01u
#define LULL_SYSCTL_SETUP    1u
#define LULL_SYSCTL_QUERY    2u
#define LULL_SYSCTL_TEARDOWN 3u
struct lull_sysctl_op {
	uint32_t cmd;           /* IN: LULL_SYSCTL_* */
	uint32_t pad;           /* IN: must be 0 */
	uint32_t tel_capacity;  /* IN/OUT: records per telemetry ring (0 = Xen's default) */
	uint32_t cmd_capacity;  /* IN/OUT: records in the command ring */
	uint32_t n_leases;      /* IN/OUT: lease table entries */
	uint32_t n_tel;         /* OUT: telemetry rings, one per pCPU id */
	uint64_t mfn;           /* OUT: first MFN of the (contiguous) region */
	uint32_t size;          /* OUT: bytes in the region */
	uint32_t active;        /* OUT: 1 while Xen publishes */
	uint64_t published;     /* OUT: telemetry records published, all rings */
	uint64_t dropped;       /* OUT: telemetry records dropped (ring full) */
};

struct lull_xen;  /* open handles */

int lull_xen_open(struct lull_xen **out);
void lull_xen_close(struct lull_xen *x);
/* cpu_time (ns) of each of the n domains in doms; -1 for one that does not exist. */
int lull_xen_cpu_times(struct lull_xen *x, const uint32_t *doms, size_t n, int64_t *out);
/* One XEN_SYSCTL_lull_op round trip; op is updated from Xen's answer on success. */
int lull_xen_lull_op(struct lull_xen *x, struct lull_sysctl_op *op);
/* Map `pages` pages of DOMID_XEN from `mfn` read-write (as xentrace maps trace
 * buffers); *out is the mapping. Unmap with lull_xen_unmap. */
int lull_xen_map(struct lull_xen *x, uint64_t mfn, size_t pages, void **out);
void lull_xen_unmap(struct lull_xen *x, void *mem, size_t pages);

#ifdef __cplusplus
}
#endif

#endif
