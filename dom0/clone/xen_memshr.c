#include "dom0/clone/xen_memshr.h"

#include <errno.h>
#include <stdbool.h>
#include <xenctrl.h>

int lull_clone_memshr_probe(int *err) {
  xc_interface *xch = xc_interface_open(NULL, NULL, 0);
  if (!xch) {
    *err = errno;
    return -1;
  }
  /* Below DOMID_FIRST_RESERVED (0x7ff0), far above any domain this machine creates. */
  errno = 0;
  int rc = xc_memshr_fork(xch, 0x7fe0, 0x7fe1, false, false);
  *err = rc < 0 ? errno : 0;
  xc_interface_close(xch);
  return rc < 0 ? 0 : 1;
}
