/* Verification stamps (see stamp.h): one line of text,
 *   sage-verified 1 DEV INO SIZE MTIME_NS CTIME_NS CHECKSUM
 * with decimal numbers and the footer's file checksum in hex. */
#include "stamp.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STAMP_MAGIC "sage-verified 1"

/* ".BASE.verified" in the directory of the file path resolves to. */
static int stamp_path(const char *path, char *out, size_t cap)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return -1;
    char *slash = strrchr(real, '/');
    *slash = '\0';
    int n = snprintf(out, cap, "%s/.%s.verified", real[0] ? real : "", slash + 1);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static void stamp_line(const struct sage_reader *r, char *out, size_t cap)
{
    const struct sage_reader_info *in = sage_reader_info(r);
    snprintf(out, cap, STAMP_MAGIC " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64
             " %016" PRIx64 "\n", in->st.dev, in->st.ino, in->st.size, in->st.mtime_ns,
             in->st.ctime_ns, in->file_checksum);
}

int sage_stamp_valid(const char *path, const struct sage_reader *r)
{
    char sp[PATH_MAX + 16], want[256], have[256];
    if (sage_reader_info(r)->st.ino == 0 || stamp_path(path, sp, sizeof(sp)) < 0)
        return 0;
    FILE *f = fopen(sp, "re");
    if (!f)
        return 0;
    int ok = fgets(have, sizeof(have), f) != NULL;
    fclose(f);
    stamp_line(r, want, sizeof(want));
    return ok && strcmp(have, want) == 0;
}

static int64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sage_stamp_clock(const struct sage_reader *r)
{
    int64_t ctime = sage_reader_info(r)->st.ctime_ns, now = coarse_now();
    for (int i = 0; now <= ctime && i < 100; i++) {
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
        now = coarse_now();
    }
    return now;
}

int sage_stamp_write(const char *path, const struct sage_reader *r, int64_t verify_start,
                     struct sage_err *err)
{
    char sp[PATH_MAX + 16], tmp[PATH_MAX + 32], line[256];
    if (verify_start <= sage_reader_info(r)->st.ctime_ns)
        return 0;
    if (stamp_path(path, sp, sizeof(sp)) < 0)
        return sage_err_sys(err, SAGE_EIO, "cannot resolve '%s'", path);
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", sp, (long)getpid());
    stamp_line(r, line, sizeof(line));
    FILE *f = fopen(tmp, "we");
    if (!f)
        return sage_err_sys(err, SAGE_EIO, "cannot write stamp '%s'", tmp);
    int bad = fputs(line, f) < 0;
    if (fclose(f) != 0 || bad || rename(tmp, sp) < 0) {
        int rc = sage_err_sys(err, SAGE_EIO, "cannot write stamp '%s'", sp);
        unlink(tmp);
        return rc;
    }
    return 0;
}

int sage_stamp_verify_reader(const char *path, const struct sage_reader *r, struct sage_err *err,
                             struct sage_err *stamp_err)
{
    int64_t t = stamp_err ? sage_stamp_clock(r) : 0;
    int rc = sage_reader_verify(r, err);
    if (rc == 0 && stamp_err) {
        stamp_err->code = 0;
        sage_stamp_write(path, r, t, stamp_err);
    }
    return rc;
}

int sage_stamp_verify(const char *path, struct sage_err *err)
{
    struct sage_reader *r;
    struct sage_err serr = { 0 };
    int rc = sage_reader_open(path, SAGE_OPEN_TRANSIENT, &r, err);
    if (rc < 0)
        return rc;
    if ((rc = sage_stamp_verify_reader(path, r, err, &serr)) == 0 && serr.code) {
        *err = serr;
        rc = -serr.code;
    }
    sage_reader_close(r);
    return rc;
}
