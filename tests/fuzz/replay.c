/* Corpus replay: feeds every regular file of each directory argument, in name
 * order, through LLVMFuzzerTestOneInput, so `make test` runs the committed
 * fuzz corpora under gcc (and SANITIZE=...) without libFuzzer. A missing or
 * empty directory fails: a corpus that silently vanished tests nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT ((size_t)64 << 20)   /* larger files are not corpus inputs */

/* Reads the regular file name in dir into a new buffer. 1 when it is not a
 * regular file (skipped), 0 on success, -1 with a message on failure. */
static int read_input(int dfd, const char *dir, const char *name, uint8_t **out, size_t *len)
{
    int rc = -1;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    *out = NULL;
    *len = 0;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            return 1;   /* a symbolic link: not a regular file */
        fprintf(stderr, "replay: cannot open '%s/%s': %s\n", dir, name, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        fprintf(stderr, "replay: cannot stat '%s/%s': %s\n", dir, name, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = 1;
        goto out;
    }
    if ((uint64_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: '%s/%s' is larger than %zu bytes\n", dir, name, REPLAY_MAX_INPUT);
        goto out;
    }
    /* One spare byte, so an empty input still gets a real (non-NULL) buffer. */
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fprintf(stderr, "replay: out of memory for '%s/%s'\n", dir, name);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fprintf(stderr, "replay: cannot read '%s/%s': %s\n", dir, name,
                    k < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        got += (size_t)k;
    }
    *out = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

static int skip_dots(const struct dirent *e)
{
    return strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
}

/* Replays one directory; 0 when it held at least one input and all ran. */
static int replay_dir(const char *dir)
{
    int rc = -1, n = -1, done = 0;
    struct dirent **names = NULL;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        fprintf(stderr, "replay: cannot open directory '%s': %s\n", dir, strerror(errno));
        goto out;
    }
    /* alphasort: name order (strcoll, and we never call setlocale: bytewise). */
    n = scandir(dir, &names, skip_dots, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list '%s': %s\n", dir, strerror(errno));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        uint8_t *data;
        size_t len;
        int r = read_input(dfd, dir, names[i]->d_name, &data, &len);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        done++;
    }
    if (done == 0) {
        fprintf(stderr, "replay: no inputs in '%s'\n", dir);
        goto out;
    }
    printf("replay: %d inputs from %s\n", done, dir);
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (replay_dir(argv[i]) < 0)
            return 1;
    return 0;
}
