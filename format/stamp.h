/* Verification stamps. Reading every byte of a 1 GB index costs about 0.3 s;
 * doing it again each time a daemon starts, for a file nobody changed, makes
 * start-up grow with the index. A stamp records that one version of a file
 * was verified in full: it lives beside the file as ".NAME.verified" and
 * names the file's device, inode, size, mtime and ctime (to the nanosecond)
 * and its whole-file checksum. Any write, truncation, rename or replacement
 * changes the inode or its ctime (which no process can set), so a stamp that
 * still matches an open file's fstat says nobody has touched those bytes
 * since they were verified. Damage below the file system (media errors) is
 * not seen by a stamp; `sage-searchd --verify=always` re-reads every load. */
#ifndef SAGE_STAMP_H
#define SAGE_STAMP_H

#include "err.h"
#include "reader.h"

/* 1 when the stamp beside path matches the file r has open, else 0. */
int sage_stamp_valid(const char *path, const struct sage_reader *r);

/* Call just before a full verification of r and pass the result to
 * sage_stamp_write. File systems take ctime from a coarse clock (a tick of
 * a few ms), so a change made in the tick that set the ctime we stamp would
 * leave it as it was; this waits (one tick at most) until that clock has
 * passed r's ctime, after which any change, during the verification or
 * later, gives the file a new ctime. The trick is git's "racy clean" rule. */
int64_t sage_stamp_clock(const struct sage_reader *r);

/* Records that r, opened from path, has been verified in full by a
 * verification that began at verify_start (sage_stamp_clock); writes nothing
 * when verify_start does not lie after the file's ctime. Written atomically
 * (temporary file and rename) in path's directory, following a symlink to
 * the file it names. */
int sage_stamp_write(const char *path, const struct sage_reader *r, int64_t verify_start,
                     struct sage_err *err);

/* Verifies every byte of r, opened from path, and with stamp_err given also
 * stamps it (sage_stamp_clock before, sage_stamp_write after): the one
 * sequence every verifier runs. Returns the verification's result; a stamp
 * that could not be written leaves the reason in stamp_err->code/msg (0
 * when written) and does not fail the call. */
int sage_stamp_verify_reader(const char *path, const struct sage_reader *r, struct sage_err *err,
                             struct sage_err *stamp_err);

/* Opens path, verifies every byte and writes its stamp: what a tool that
 * has just written or fetched a file runs so that searchd starts at once.
 * A stamp that cannot be written is an error here. */
int sage_stamp_verify(const char *path, struct sage_err *err);

#endif
