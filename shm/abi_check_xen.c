/* Compiles lull_shm.h the way Xen does (-D__XEN__, freestanding, Xen's headers without
 * EPROTO; stand-ins in shm/xen_stub/): the header must stand alone there. */
#include "shm/lull_shm.h"

#ifdef EPROTO
#error "the Xen stand-in must not define EPROTO: this check would prove nothing"
#endif
_Static_assert(LULL_EPROTO == 71, "without EPROTO, lull_shm.h brings Linux's value");

/* Used, so that the error paths that return -LULL_EPROTO are compiled, not just parsed. */
int lull_abi_check_xen(void *ring, uint64_t bytes);
int lull_abi_check_xen(void *ring, uint64_t bytes)
{
	struct lull_cons c;
	struct lull_tel_rec r;
	int rc = lull_cons_init(&c, ring, bytes, 16, sizeof(r));

	return rc ? rc : lull_cons_pop(&c, &r, 1, sizeof(r));
}
