/* lull-clone's memory-sharing probe, in C: xenctrl.h needs GNU C extensions that strict
 * C++20 (the project's dialect) rejects, so the C++ back end calls this instead.
 *
 * Calls xc_memshr_fork() on two domain ids that cannot exist and returns 0 with *err set
 * to the errno it failed with (ENOSYS: the hypervisor has no memory sharing), or -1 with
 * *err set when libxenctrl cannot be opened. Returns 1 if the call succeeded (it cannot
 * for absent domains; reported as is). */
#ifndef LULL_DOM0_CLONE_XEN_MEMSHR_H_
#define LULL_DOM0_CLONE_XEN_MEMSHR_H_

#ifdef __cplusplus
extern "C" {
#endif

int lull_clone_memshr_probe(int *err);

#ifdef __cplusplus
}
#endif

#endif
