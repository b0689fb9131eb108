/* Stand-in for Xen's xen/types.h in shm/abi_check_xen.c: the fixed-width types Xen
 * gives the hypervisor, from the compiler's own macros (no libc, as in Xen). */
#ifndef LULL_XEN_STUB_TYPES_H
#define LULL_XEN_STUB_TYPES_H
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINTPTR_TYPE__ uintptr_t;
#define NULL ((void *)0)
#endif
