/* Directory walking; see crawl.h. Directories already entered are recorded
 * by (device, inode) so a symlink loop ends at its second visit. */
#include "crawl.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"

#define MAX_DEPTH 64

struct dev_ino {
    dev_t dev;
    ino_t ino;
};

struct walk {
    const struct crawl_opts *o;
    const struct crawl_cb *cb;
    char *root_real;            /* realpath of the root directory */
    size_t root_real_len;
    struct dev_ino *seen;
    size_t n_seen, cap_seen;
};

static const char *const vcs_dirs[] = { ".git", ".hg", ".svn", ".bzr", "CVS", "_darcs" };

int crawl_glob_match(const char *glob, const char *rel)
{
    if (fnmatch(glob, rel, FNM_PATHNAME | FNM_PERIOD) == 0)
        return 1;
    if (strchr(glob, '/'))
        return 0;
    for (const char *p = rel; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char comp[NAME_MAX + 1];
        if (n <= NAME_MAX) {
            memcpy(comp, p, n);
            comp[n] = '\0';
            if (fnmatch(glob, comp, FNM_PERIOD) == 0)
                return 1;
        }
        p += n + (slash != NULL);
    }
    return 0;
}

static int excluded(const struct crawl_opts *o, const char *rel)
{
    for (size_t i = 0; i < o->n_exclude; i++)
        if (crawl_glob_match(o->exclude[i], rel))
            return 1;
    return 0;
}

static int included(const struct crawl_opts *o, const char *rel)
{
    if (o->n_include == 0)
        return 1;
    for (size_t i = 0; i < o->n_include; i++)
        if (crawl_glob_match(o->include[i], rel))
            return 1;
    return 0;
}

static int is_vcs(const char *name)
{
    for (size_t i = 0; i < sizeof(vcs_dirs) / sizeof(*vcs_dirs); i++)
        if (strcmp(name, vcs_dirs[i]) == 0)
            return 1;
    return 0;
}

/* Records a directory; 1 if it was already entered, -1 when out of memory. */
static int seen_before(struct walk *w, const struct stat *st)
{
    for (size_t i = 0; i < w->n_seen; i++)
        if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino)
            return 1;
    if (w->n_seen == w->cap_seen) {
        size_t cap = w->cap_seen ? w->cap_seen * 2 : 64;
        struct dev_ino *s = sage_realloc(w->seen, cap * sizeof(*s));
        if (!s)
            return -1;
        w->seen = s;
        w->cap_seen = cap;
    }
    w->seen[w->n_seen++] = (struct dev_ino){ st->st_dev, st->st_ino };
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether path's real location lies inside the root. */
static int inside_root(const struct walk *w, const char *path)
{
    char *real = realpath(path, NULL);
    int ok = real && strncmp(real, w->root_real, w->root_real_len) == 0 &&
             (real[w->root_real_len] == '/' || real[w->root_real_len] == '\0');
    free(real);
    return ok;
}

static int walk_dir(struct walk *w, const char *dir, const char *rel, int depth);

static int visit(struct walk *w, const char *path, const char *rel, const char *name, int depth)
{
    struct stat st;
    const struct crawl_cb *cb = w->cb;
    if (lstat(path, &st) < 0) {
        cb->skip(cb->ctx, path, CRAWL_FAILED, strerror(errno));
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        if (!inside_root(w, path)) {
            cb->skip(cb->ctx, path, CRAWL_SKIPPED, "symbolic link leading out of the root");
            return 0;
        }
        if (stat(path, &st) < 0) {
            cb->skip(cb->ctx, path, CRAWL_FAILED, strerror(errno));
            return 0;
        }
    }
    if (!w->o->hidden && (name[0] == '.' || (S_ISDIR(st.st_mode) && is_vcs(name))))
        return 0;       /* hidden by default: not worth a report line each */
    if (excluded(w->o, rel)) {
        cb->skip(cb->ctx, path, CRAWL_SKIPPED, "excluded by --exclude");
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        int s = seen_before(w, &st);
        if (s < 0)
            return -2;
        if (s) {
            cb->skip(cb->ctx, path, CRAWL_SKIPPED, "directory already visited (symlink loop)");
            return 0;
        }
        return walk_dir(w, path, rel, depth + 1);
    }
    if (!S_ISREG(st.st_mode)) {
        cb->skip(cb->ctx, path, CRAWL_SKIPPED,
                 S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
        return 0;
    }
    if (!included(w->o, rel)) {
        cb->skip(cb->ctx, path, CRAWL_SKIPPED, "not matched by --include");
        return 0;
    }
    return cb->file(cb->ctx, path, rel);
}

static int walk_dir(struct walk *w, const char *dir, const char *rel, int depth)
{
    const struct crawl_cb *cb = w->cb;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (depth > MAX_DEPTH) {
        cb->skip(cb->ctx, dir, CRAWL_SKIPPED, "directory nesting deeper than 64");
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d) {
        cb->skip(cb->ctx, dir, CRAWL_FAILED, strerror(errno));
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = sage_realloc(names, cap * sizeof(*nn));
            if (!nn) {
                rc = -2;
                break;
            }
            names = nn;
        }
        if (!(names[n] = sage_strdup(e->d_name))) {
            rc = -2;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t pl = strlen(dir) + strlen(names[i]) + 2, rl = strlen(rel) + strlen(names[i]) + 2;
        char *p = sage_malloc(pl), *r = sage_malloc(rl);
        if (!p || !r) {
            rc = -2;
        } else {
            snprintf(p, pl, "%s/%s", dir, names[i]);
            snprintf(r, rl, "%s%s%s", rel, *rel ? "/" : "", names[i]);
            rc = visit(w, p, r, names[i], depth);
        }
        sage_free(p);
        sage_free(r);
    }
    for (size_t i = 0; i < n; i++)
        sage_free(names[i]);
    sage_free(names);
    return rc;
}

int crawl_root(const char *root, const struct crawl_opts *o, const struct crawl_cb *cb)
{
    struct walk w = { o, cb, NULL, 0, NULL, 0, 0 };
    struct stat st;
    int rc;
    if (stat(root, &st) < 0) {
        cb->skip(cb->ctx, root, CRAWL_FAILED, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (!S_ISREG(st.st_mode)) {
            cb->skip(cb->ctx, root, CRAWL_SKIPPED, "not a regular file or directory");
            return 0;
        }
        const char *base = strrchr(root, '/');
        return cb->file(cb->ctx, root, base ? base + 1 : root);
    }
    if (!(w.root_real = realpath(root, NULL)))
        return -2;
    w.root_real_len = strlen(w.root_real);
    if (w.root_real_len == 1)
        w.root_real_len = 0;        /* root "/": every path is inside */
    rc = seen_before(&w, &st) < 0 ? -2 : walk_dir(&w, root, "", 0);
    free(w.root_real);
    sage_free(w.seen);
    return rc;
}
