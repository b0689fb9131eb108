/* xen_memory_xc.h - the libxenctrl / libxenforeignmemory calls behind lull::xen's
 * XenCalls (dom0/xen_memory.h), as a plain C API.
 *
 * Debian's xenctrl.h needs GNU C (anonymous unions, __align8__), so these calls are
 * compiled as C (gnu11) and C++ sees only what is declared here. Every int function
 * returns 0 or a negative errno. */
#ifndef LULL_DOM0_XEN_MEMORY_XC_H
#define LULL_DOM0_XEN_MEMORY_XC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lull_xm;  /* open handles: xenctrl + xenforeignmemory */

struct lull_xm_dominfo {
	uint32_t domid;
	int hvm, paused, dying, shutdown;
	uint32_t guest_width;      /* bytes: 8 for a 64-bit PV guest */
	uint64_t shared_info_frame; /* an MFN for a PV guest */
	uint64_t tot_pages, max_pages;
	uint64_t cpu_time;         /* ns, all vCPUs */
	uint64_t max_gpfn;         /* xc_domain_maximum_gpfn */
	uint64_t max_mfn;          /* xc_maximum_ram_page: the host's highest frame */
};

/* The fields of the guest's shared_info that anchor its p2m (arch_shared_info). */
struct lull_xm_anchor {
	uint64_t max_pfn;          /* entries in the p2m */
	uint64_t fll;              /* pfn_to_mfn_frame_list_list (0 unset, ~0 invalid) */
	uint64_t p2m_cr3, p2m_vaddr, p2m_generation;
};

int lull_xm_open(struct lull_xm **out);
void lull_xm_close(struct lull_xm *x);
int lull_xm_dominfo(struct lull_xm *x, uint32_t domid, struct lull_xm_dominfo *out);
int lull_xm_anchor(struct lull_xm *x, uint32_t domid, uint64_t shared_info_mfn,
		   struct lull_xm_anchor *out);
/* Copies one frame of the domain (read-only foreign mapping) into page (4096 bytes). */
int lull_xm_read_frame(struct lull_xm *x, uint32_t domid, uint64_t mfn, void *page);
/* Maps n frames of the domain at addr (MAP_FIXED, over a range the caller reserved);
 * err[i] gets 0 or a negative errno per frame. */
int lull_xm_map_at(struct lull_xm *x, uint32_t domid, void *addr, int writable,
		   const uint64_t *mfns, size_t n, int *err);
int lull_xm_pause(struct lull_xm *x, uint32_t domid);
int lull_xm_unpause(struct lull_xm *x, uint32_t domid);
int lull_xm_destroy(struct lull_xm *x, uint32_t domid);
/* Log-dirty mode on (enable != 0) or off. */
int lull_xm_logdirty(struct lull_xm *x, uint32_t domid, int enable);
/* XEN_DOMCTL_SHADOW_OP_CLEAN: copies the bitmap of pages written since the last clean
 * (bit p of word p / 64 for pfn p, `pages` bits) into bitmap and clears it in Xen. */
int lull_xm_clean(struct lull_xm *x, uint32_t domid, uint64_t *bitmap, uint64_t pages,
		  uint64_t *dirty_count);

#ifdef __cplusplus
}
#endif

#endif
