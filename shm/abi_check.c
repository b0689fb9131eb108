/* Compiles lull_shm.h as strict C11, as Xen will; nothing to run. */
#include "shm/lull_shm.h"
