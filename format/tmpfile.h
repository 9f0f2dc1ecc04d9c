/* Anonymous temporary files for spilling: no name in any directory
 * (O_TMPFILE, else mkostemp and an immediate unlink), so nothing is left
 * behind whatever happens to the process. */
#ifndef SAGE_TMPFILE_H
#define SAGE_TMPFILE_H

#include "err.h"

/* A read-write descriptor of a new anonymous file in dir, or -SAGE_EIO
 * (-SAGE_ENOMEM) with the reason. */
int sage_tmpfile_open(const char *dir, struct sage_err *err);

#endif
