// Compiles lull_shm.h as C++20 (through ring.h); nothing to run.
#include "shm/ring.h"
