/* Anonymous temporary files (tmpfile.h). */
#include "tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

int sage_tmpfile_open(const char *dir, struct sage_err *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* no O_TMPFILE on this file system: a name, removed at once */
        size_t n = strlen(dir) + sizeof("/.sage-spill-XXXXXX");
        char *path = sage_malloc(n);
        if (!path)
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate a temporary file name");
        snprintf(path, n, "%s/.sage-spill-XXXXXX", dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0 && unlink(path) < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
        }
        sage_free(path);
    }
    if (fd < 0)
        return sage_err_sys(err, SAGE_EIO, "cannot create a temporary file in '%s'", dir);
    return fd;
}
