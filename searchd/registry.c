/* Index registry: directory scans, loading with full verification, the
 * reference-counted snapshot swap, and the watcher thread (inotify with a
 * polling fallback). Loading happens under scan_mu only; readers take mu
 * for the few instructions of a pointer copy and a reference increment. */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "mpjson.h"
#include "stamp.h"

struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct entry {
    char *name;
    struct snapshot *cur;       /* NULL until a load succeeds */
    struct file_id loaded;      /* what cur came from */
    struct file_id failed;      /* the last file that failed, not retried until it changes */
    int has_failed;
    uint64_t generation;
    int seen;                   /* present in the current scan */
    int warned_twin;            /* the NAME.sage twin of a NAME symlink was logged */
};

struct registry {
    char *dir;
    pthread_mutex_t mu;         /* entries and their cur pointers */
    pthread_mutex_t scan_mu;    /* one scan at a time */
    struct entry *entries;
    size_t n_entries, cap_entries;
    struct registry_stats stats;
    size_t n_wanted;            /* index files seen by the last scan */
    pthread_t watcher;
    int watching;
    int stop_pipe[2];
    unsigned poll_ms;
    int verify_always;
    int warm_on_load;           /* atomic: load() warms the searcher before publishing */
    registry_check_fn check;    /* NULL: none */
    void *check_ctx;
};

static int same_file(const struct file_id *a, const struct file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

int registry_new(const char *dir, struct registry **out)
{
    struct registry *reg = sage_calloc(1, sizeof(*reg));
    *out = NULL;
    if (!reg || !(reg->dir = sage_strdup(dir))) {
        sage_free(reg);
        return -SAGE_ENOMEM;
    }
    pthread_mutex_init(&reg->mu, NULL);
    pthread_mutex_init(&reg->scan_mu, NULL);
    reg->stop_pipe[0] = reg->stop_pipe[1] = -1;
    *out = reg;
    return 0;
}

static void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    sage_searcher_free(s->searcher);
    sage_reader_close(s->reader);
    json_decref(s->build);
    sage_free(s->name);
    sage_free(s->file);
    sage_free(s);
}

void snapshot_release(struct snapshot *s)
{
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        snapshot_free(s);
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    if (reg->watching) {
        if (write(reg->stop_pipe[1], "x", 1) == 1)
            pthread_join(reg->watcher, NULL);
        close(reg->stop_pipe[0]);
        close(reg->stop_pipe[1]);
    }
    for (size_t i = 0; i < reg->n_entries; i++) {
        snapshot_release(reg->entries[i].cur);
        sage_free(reg->entries[i].name);
    }
    sage_free(reg->entries);
    pthread_mutex_destroy(&reg->mu);
    pthread_mutex_destroy(&reg->scan_mu);
    sage_free(reg->dir);
    sage_free(reg);
}

/* The checksum in the sidecar FILE.sha256 (not recomputed: verify has
 * checked every byte), else "". */
static void read_sidecar(const char *file, char *hex)
{
    char path[PATH_MAX + 8], line[256];
    hex[0] = '\0';
    snprintf(path, sizeof(path), "%s.sha256", file);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(line, sizeof(line), f) && strspn(line, "0123456789abcdef") == 64) {
        memcpy(hex, line, 64);
        hex[64] = '\0';
    }
    fclose(f);
}

static json_t *load_build(const struct sage_reader *r)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_BUILD);
    struct sage_bytes b;
    struct sage_err err;
    json_t *rec = NULL;
    if (s && sage_reader_load(r, s, 16u << 20, &b, &err) == 0) {
        sage_mpjson_decode(b.data, b.len, &rec, &err);
        sage_bytes_release(&b);
    }
    return rec ? rec : json_object();
}

/* Maps, verifies and opens file as index name. NULL (logged) on failure. */
static struct snapshot *load(const struct registry *reg, const char *name, const char *file,
                             uint64_t size)
{
    struct sage_err err = { 0 };
    struct snapshot *s = sage_calloc(1, sizeof(*s));
    if (!s || !(s->name = sage_strdup(name)) || !(s->file = sage_strdup(file))) {
        sage_log(SAGE_LOG_ERROR, "cannot load index '%s': out of memory", name);
        snapshot_free(s);
        return NULL;
    }
    /* Every byte is verified before the first request sees it, unless a
     * stamp says this very version of the file (same inode, size, mtime and
     * ctime, fstat'ed through the descriptor that was mapped) already was. */
    double t0 = sage_now_ms(), c0 = sage_thread_cpu_ms();
    if (sage_reader_open(file, 0, &s->reader, &err) < 0)
        goto refuse;
    s->stamped = !reg->verify_always && sage_stamp_valid(file, s->reader);
    struct sage_err serr = { 0 };
    if (!s->stamped && sage_stamp_verify_reader(file, s->reader, &err, &serr) < 0)
        goto refuse;
    if (serr.code)
        sage_log(SAGE_LOG_DEBUG, "index '%s': no verification stamp: %s", name, serr.msg);
    /* a swap decompresses everything before publishing, so that neither a
     * bad table nor its decoding time reaches a request; the first scan
     * leaves that to the watcher thread, so the daemon is ready at once */
    if (sage_searcher_open(s->reader, &s->searcher, &err) < 0 ||
        (__atomic_load_n(&reg->warm_on_load, __ATOMIC_ACQUIRE) &&
         sage_searcher_warm(s->searcher, &err) < 0))
        goto refuse;
    if (reg->check && reg->check(reg->check_ctx, name, s->searcher, &err) != 0)
        goto refuse;
    s->load_ms = sage_now_ms() - t0;
    s->load_cpu_ms = sage_thread_cpu_ms() - c0;
    s->refs = 1;
    s->size = size;
    s->build = load_build(s->reader);
    read_sidecar(file, s->sha256);
    clock_gettime(CLOCK_REALTIME, &s->loaded_at);
    return s;
refuse:
    sage_log(SAGE_LOG_ERROR, "refusing index '%s' from '%s': %s", name, file, err.msg);
    snapshot_free(s);
    return NULL;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

struct candidate {
    char *name, *path;
    struct file_id id;
    int bare;                   /* the entry is NAME, not NAME.sage */
    char *twin;                 /* a NAME.sage of another file, ignored for this NAME */
};

static int cmp_candidates(const void *a, const void *b)
{
    return strcmp(((const struct candidate *)a)->name, ((const struct candidate *)b)->name);
}

/* The index files of the directory: NAME.sage files, and NAME symlinks to
 * files; a .sage file that a symlink of the directory points at is that
 * symlink's, not an index of its own. */
static struct candidate *list_dir(const char *dir, size_t *n_out)
{
    DIR *d = opendir(dir);
    struct candidate *c = NULL;
    size_t n = 0, cap = 0;
    *n_out = 0;
    if (!d) {
        sage_log(SAGE_LOG_ERROR, "cannot read index directory '%s': %s", dir, strerror(errno));
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        char path[PATH_MAX];
        struct stat lst, st;
        if (nm[0] == '.' || has_suffix(nm, ".tmp"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, nm);
        if (lstat(path, &lst) < 0 || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        int link = S_ISLNK(lst.st_mode);
        if (!link && !has_suffix(nm, ".sage"))
            continue;
        if (link && strchr(nm, '.') && !has_suffix(nm, ".sage"))
            continue;       /* a link named like a sidecar or report */
        if (sage_grow((void **)&c, &cap, n + 1, sizeof(*c)) < 0)
            break;
        size_t nl = strlen(nm) - (has_suffix(nm, ".sage") ? 5 : 0);
        char *resolved = realpath(path, NULL);
        c[n].name = sage_malloc(nl + 1);
        c[n].path = resolved ? sage_strdup(resolved) : NULL;
        free(resolved);
        if (!c[n].name || !c[n].path) {
            sage_free(c[n].name);
            sage_free(c[n].path);
            continue;
        }
        memcpy(c[n].name, nm, nl);
        c[n].name[nl] = '\0';
        c[n].id = (struct file_id){ st.st_dev, st.st_ino, st.st_size, st.st_mtim };
        c[n].bare = nl == strlen(nm);
        c[n].twin = NULL;
        n++;
    }
    closedir(d);
    /* drop .sage files that a symlink in the directory points at, and the
     * NAME.sage twin of a NAME symlink */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n && c[i].name; j++) {
            if (i == j || !c[j].name)
                continue;
            if (strcmp(c[i].path, c[j].path) == 0 && strcmp(c[i].name, c[j].name) != 0) {
                /* keep the symlink's name: the one whose file name differs */
                char own[PATH_MAX];
                snprintf(own, sizeof(own), "/%s.sage", c[i].name);
                if (has_suffix(c[i].path, own)) {
                    sage_free(c[i].name);
                    c[i].name = NULL;
                }
            }
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].name)
            c[m++] = c[i];
        else
            sage_free(c[i].path);
    }
    if (m)
        qsort(c, m, sizeof(*c), cmp_candidates);
    /* a NAME symlink and a NAME.sage of another file both name NAME: served
     * in turn, they would swap at every scan. The symlink wins. */
    size_t u = 0;
    for (size_t i = 0; i < m; i++) {
        if (u && strcmp(c[u - 1].name, c[i].name) == 0) {
            struct candidate *keep = &c[u - 1], drop = c[i];
            if (drop.bare) {
                drop = *keep;
                *keep = c[i];
            }
            sage_free(keep->twin);
            keep->twin = drop.path;
            sage_free(drop.name);
            sage_free(drop.twin);
            continue;
        }
        c[u++] = c[i];
    }
    *n_out = u;
    return c;
}

static struct entry *find_entry(struct registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_entries; i++)
        if (strcmp(reg->entries[i].name, name) == 0)
            return &reg->entries[i];
    return NULL;
}

int registry_scan(struct registry *reg)
{
    size_t n = 0;
    int changes = 0;
    pthread_mutex_lock(&reg->scan_mu);
    struct candidate *c = list_dir(reg->dir, &n);
    for (size_t i = 0; i < reg->n_entries; i++)
        reg->entries[i].seen = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&reg->mu);
        struct entry *e = find_entry(reg, c[i].name);
        if (!e && sage_grow((void **)&reg->entries, &reg->cap_entries, reg->n_entries + 1,
                            sizeof(*reg->entries)) == 0) {
            e = &reg->entries[reg->n_entries];
            memset(e, 0, sizeof(*e));
            if ((e->name = sage_strdup(c[i].name)))
                reg->n_entries++;
            else
                e = NULL;
        }
        if (e) {
            e->seen = 1;
            if (c[i].twin && !e->warned_twin)
                sage_log(SAGE_LOG_WARN, "ignoring '%s' as index '%s': the symlink '%s/%s' names "
                         "it too", c[i].twin, c[i].name, reg->dir, c[i].name);
            e->warned_twin = c[i].twin != NULL;
        }
        int unchanged = !e || (e->cur && same_file(&e->loaded, &c[i].id)) ||
                        (e->has_failed && same_file(&e->failed, &c[i].id));
        pthread_mutex_unlock(&reg->mu);
        if (unchanged)
            continue;
        /* load outside mu: requests keep being served from the old snapshot */
        struct snapshot *s = load(reg, c[i].name, c[i].path, (uint64_t)c[i].id.size);
        pthread_mutex_lock(&reg->mu);
        e = find_entry(reg, c[i].name);
        struct snapshot *old = NULL;
        if (s && e) {
            s->generation = ++e->generation;
            old = e->cur;
            e->cur = s;
            e->loaded = c[i].id;
            e->has_failed = 0;
            reg->stats.reloads_ok++;
            changes++;
        } else if (e) {
            e->failed = c[i].id;
            e->has_failed = 1;
            reg->stats.reloads_failed++;
        }
        pthread_mutex_unlock(&reg->mu);
        if (s && e)
            sage_log(SAGE_LOG_INFO,
                     "serving index '%s' generation %llu from '%s' (%s, %.1f ms, %.1f ms CPU)",
                     s->name, (unsigned long long)s->generation, s->file,
                     s->stamped ? "verification stamp" : "verified in full", s->load_ms,
                     s->load_cpu_ms);
        else
            snapshot_free(s);
        snapshot_release(old);
    }
    /* names whose file is gone are unloaded */
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n_entries;) {
        struct entry *e = &reg->entries[i];
        if (e->seen || !c) {
            i++;
            continue;
        }
        sage_log(SAGE_LOG_INFO, "unloading index '%s': its file is gone", e->name);
        snapshot_release(e->cur);
        sage_free(e->name);
        reg->entries[i] = reg->entries[--reg->n_entries];
        changes++;
    }
    reg->n_wanted = n;
    if (changes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        reg->stats.last_reload = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    pthread_mutex_unlock(&reg->mu);
    for (size_t i = 0; i < n; i++) {
        sage_free(c[i].name);
        sage_free(c[i].path);
        sage_free(c[i].twin);
    }
    sage_free(c);
    pthread_mutex_unlock(&reg->scan_mu);
    return changes;
}

struct snapshot *registry_acquire(struct registry *reg, const char *name)
{
    struct snapshot *s = NULL, *first = NULL;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n_entries; i++) {
        struct entry *e = &reg->entries[i];
        if (!e->cur)
            continue;
        if (name && strcmp(e->name, name) == 0)
            s = e->cur;
        if (!first || strcmp(e->name, first->name) < 0)
            first = e->cur;
    }
    if (!name)
        s = first;
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&reg->mu);
    return s;
}

static int cmp_snap(const void *a, const void *b)
{
    return strcmp((*(struct snapshot *const *)a)->name, (*(struct snapshot *const *)b)->name);
}

struct snapshot **registry_acquire_all(struct registry *reg, size_t *n)
{
    pthread_mutex_lock(&reg->mu);
    struct snapshot **all = sage_calloc(reg->n_entries ? reg->n_entries : 1, sizeof(*all));
    *n = 0;
    for (size_t i = 0; all && i < reg->n_entries; i++)
        if (reg->entries[i].cur) {
            all[(*n)++] = reg->entries[i].cur;
            __atomic_add_fetch(&reg->entries[i].cur->refs, 1, __ATOMIC_ACQ_REL);
        }
    pthread_mutex_unlock(&reg->mu);
    if (all && *n)
        qsort(all, *n, sizeof(*all), cmp_snap);
    return all;
}

void registry_release_all(struct snapshot **all, size_t n)
{
    for (size_t i = 0; all && i < n; i++)
        snapshot_release(all[i]);
    sage_free(all);
}

int registry_ready(struct registry *reg)
{
    size_t loaded = 0;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n_entries; i++)
        loaded += reg->entries[i].cur != NULL;
    int ready = loaded > 0 && loaded == reg->n_wanted;
    pthread_mutex_unlock(&reg->mu);
    return ready;
}

void registry_stats(struct registry *reg, struct registry_stats *out)
{
    pthread_mutex_lock(&reg->mu);
    *out = reg->stats;
    pthread_mutex_unlock(&reg->mu);
}

/* Warms what the first scan published cold (see load). */
static void warm_all(struct registry *reg)
{
    size_t n = 0;
    struct snapshot **all = registry_acquire_all(reg, &n);
    for (size_t i = 0; all && i < n; i++) {
        struct sage_err err = { 0 };
        double t0 = sage_now_ms();
        if (sage_searcher_warm(all[i]->searcher, &err) < 0) {
            sage_log(SAGE_LOG_ERROR, "index '%s' from '%s': %s", all[i]->name, all[i]->file,
                     err.msg);
            continue;
        }
        sage_log(SAGE_LOG_DEBUG, "index '%s': document table decoded in %.1f ms", all[i]->name,
                 sage_now_ms() - t0);
    }
    registry_release_all(all, n);
}

static void *watch_main(void *arg)
{
    struct registry *reg = arg;
    __atomic_store_n(&reg->warm_on_load, 1, __ATOMIC_RELEASE);
    warm_all(reg);
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd >= 0 && inotify_add_watch(fd, reg->dir, IN_CREATE | IN_DELETE | IN_MOVED_TO |
                                     IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB) < 0) {
        sage_log(SAGE_LOG_WARN, "cannot watch '%s' (%s): polling every %u ms", reg->dir,
                 strerror(errno), reg->poll_ms);
        close(fd);
        fd = -1;
    }
    for (;;) {
        struct pollfd p[2] = { { reg->stop_pipe[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
        int r = poll(p, fd >= 0 ? 2 : 1, (int)reg->poll_ms);
        if (r > 0 && (p[0].revents & POLLIN))
            break;
        if (r > 0 && fd >= 0 && (p[1].revents & POLLIN)) {
            char buf[4096];
            /* let a burst of events (copy, rename, sidecar) settle */
            struct pollfd q = { reg->stop_pipe[0], POLLIN, 0 };
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
            if (poll(&q, 1, 20) > 0)
                break;
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
        }
        registry_scan(reg);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

void registry_set_check(struct registry *reg, registry_check_fn fn, void *ctx)
{
    reg->check = fn;
    reg->check_ctx = ctx;
}

void registry_set_verify_always(struct registry *reg, int always)
{
    reg->verify_always = always;
}

int registry_watch(struct registry *reg, unsigned poll_ms)
{
    reg->poll_ms = poll_ms ? poll_ms : 1000;
    if (pipe2(reg->stop_pipe, O_CLOEXEC) < 0)
        return -SAGE_EIO;
    if (pthread_create(&reg->watcher, NULL, watch_main, reg) != 0) {
        close(reg->stop_pipe[0]);
        close(reg->stop_pipe[1]);
        return -SAGE_EIO;
    }
    reg->watching = 1;
    return 0;
}
