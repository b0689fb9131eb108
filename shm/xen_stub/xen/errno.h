/* Stand-in for Xen's xen/errno.h in shm/abi_check_xen.c: the codes lull_shm.h uses,
 * with Xen's values, and like Xen's no EPROTO. */
#ifndef LULL_XEN_STUB_ERRNO_H
#define LULL_XEN_STUB_ERRNO_H
#define EBUSY 16
#define EINVAL 22
#define ENOSPC 28
#endif
