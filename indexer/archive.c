/* Archives read from memory through libarchive: zip, tar (plain or under
 * gzip, bzip2, xz, zstd), 7z, and a lone compressed file as one member.
 * Members are read block by block, so the entry count, expanded bytes and
 * expansion ratio are checked as bytes come out, never after a bomb has gone
 * off. What a member's bytes mean, and nesting, are the caller's business. */
#include "archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <inttypes.h>
#include <locale.h>
#include <string.h>
#include <utf8proc.h>

#include "alloc.h"

#define READ_BLOCK ((size_t)64 << 10)   /* bytes asked of archive_read_data at a time */
#define DRAIN_BLOCK ((size_t)16 << 10)  /* stack buffer for bytes read only to count them */
#define NAME_MAX_LEN 4096               /* a longer member name is refused as unsafe */
#define SHOWN_MAX 256                   /* bytes of a refused name shown in its skip report */

/* One archive being walked. */
struct walk {
    const char *name;                   /* the archive's name, for messages */
    size_t len;                         /* archive bytes: the ratio's denominator */
    const struct archive_limits *lim;
    struct archive_budget *budget;      /* shared with the enclosing archives */
    struct archive *a;
    struct archive_entry *entry;        /* the current member */
    struct sage_err *err;
    /* libarchive converts names in the thread's locale: C.UTF-8 (0 if the
     * C library lacks it) while libarchive runs, the caller's in callbacks */
    locale_t utf8;
    locale_t outer;
    int filtered;                       /* a decompression filter feeds the format */
    uint64_t data_bytes;                /* member bytes read out of this archive */
    uint64_t counted;                   /* this archive's share of budget->expanded */
    uint8_t *buf;                       /* the current member, cap <= member limit */
    size_t cap;
    size_t keep;                        /* the member limit, as a size_t */
    char path[NAME_MAX_LEN + 1];        /* the current member's sanitized name */
};

/* ---- magic ---- */

static int has(const uint8_t *p, size_t len, size_t off, const char *magic, size_t n)
{
    return len >= off && len - off >= n && memcmp(p + off, magic, n) == 0;
}

/* gzip, bzip2, xz or zstd: a compressed stream, perhaps of a single file. */
static int compressed_magic(const uint8_t *p, size_t len)
{
    return has(p, len, 0, "\x1f\x8b\x08", 3) ||
           (has(p, len, 0, "BZh", 3) && len > 3 && p[3] >= '1' && p[3] <= '9') ||
           has(p, len, 0, "\xfd" "7zXZ\x00", 6) || has(p, len, 0, "\x28\xb5\x2f\xfd", 4);
}

int archive_detect(const uint8_t *data, size_t len)
{
    if (!data)
        return 0;
    return has(data, len, 0, "PK\x03\x04", 4) || has(data, len, 0, "PK\x05\x06", 4) ||
           has(data, len, 257, "ustar", 5) || has(data, len, 0, "7z\xbc\xaf\x27\x1c", 6) ||
           compressed_magic(data, len);
}

/* ---- names ---- */

/* Length of the UTF-8 character at p (at most n bytes), or 0 when the bytes
 * there are not valid UTF-8 or encode a control character (C0, DEL, C1). */
static size_t char_len(const uint8_t *p, size_t n)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(p, n > 4 ? 4 : (utf8proc_ssize_t)n, &cp);
    if (k <= 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
        return 0;
    return (size_t)k;
}

/* Writes the safe relative form of raw into out (NAME_MAX_LEN + 1 bytes):
 * backslashes are separators, empty and "." components vanish (so leading
 * "/" and "./" go). A ".." component, a control character, invalid UTF-8, an
 * overlong or empty result refuse the name: -1. */
static int sanitize(const char *raw, char *out)
{
    const uint8_t *p = (const uint8_t *)raw;
    size_t o = 0;
    while (*p) {
        if (*p == '/' || *p == '\\') {
            p++;
            continue;
        }
        size_t n = 0;   /* one component: p[0 .. n) */
        while (p[n] && p[n] != '/' && p[n] != '\\') {
            size_t k = char_len(p + n, strnlen((const char *)p + n, 4));
            if (k == 0)
                return -1;
            n += k;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (!(n == 1 && p[0] == '.')) {
            if (o + (o > 0) + n > NAME_MAX_LEN)
                return -1;
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -1;
}

/* A refused name as it may be shown: at most SHOWN_MAX bytes, with every
 * byte that is not part of a printable UTF-8 character replaced by '?'. */
static void shown(const char *raw, char *out, size_t out_size)
{
    const uint8_t *p = (const uint8_t *)(raw ? raw : "");
    size_t o = 0, max = out_size - 1 < SHOWN_MAX ? out_size - 1 : SHOWN_MAX;
    while (*p) {
        size_t k = char_len(p, strnlen((const char *)p, 4));
        if (o + (k ? k : 1) > max)
            break;
        if (k == 0) {
            out[o++] = '?';
            p++;
        } else {
            memcpy(out + o, p, k);
            o += k;
            p += k;
        }
    }
    out[o] = '\0';
}

/* The one member of a compressed single file: name's last component less its
 * compression suffix ("notes.txt.gz" gives "notes.txt"), else "data". */
static void raw_name(const char *name, char *out)
{
    static const struct {
        const char *suffix, *becomes;
    } strip[] = {
        { ".gz", "" }, { ".bz2", "" }, { ".xz", "" }, { ".zst", "" }, { ".zstd", "" },
        { ".tgz", ".tar" }, { ".tbz2", ".tar" }, { ".tbz", ".tar" }, { ".txz", ".tar" },
        { ".tzst", ".tar" },
    };
    const char *base = name;
    for (const char *q = name; *q; q++)
        if (*q == '/' || *q == '\\')
            base = q + 1;
    size_t n = strlen(base);
    const char *tail = "";
    for (size_t i = 0; i < sizeof(strip) / sizeof(strip[0]); i++) {
        size_t s = strlen(strip[i].suffix);
        if (n >= s && strcasecmp(base + n - s, strip[i].suffix) == 0) {
            n -= s;
            tail = strip[i].becomes;
            break;
        }
    }
    char cand[NAME_MAX_LEN + 1];
    int k = snprintf(cand, sizeof(cand), "%.*s%s", (int)(n < NAME_MAX_LEN ? n : NAME_MAX_LEN),
                     base, tail);
    if (k <= 0 || (size_t)k >= sizeof(cand) || sanitize(cand, out) < 0)
        snprintf(out, NAME_MAX_LEN + 1, "data");
}

/* ---- limits ---- */

static void enter(struct walk *w)
{
    if (w->utf8)
        w->outer = uselocale(w->utf8);
}

static void leave(struct walk *w)
{
    if (w->utf8)
        uselocale(w->outer);
}

/* What this archive has expanded so far. Under a decompression filter the
 * format's position in the decompressed stream counts too, so bytes
 * libarchive reads past on its own (tar headers, padding) are not free. */
static uint64_t expanded_here(const struct walk *w)
{
    uint64_t here = w->data_bytes;
    if (w->filtered) {
        la_int64_t f = archive_filter_bytes(w->a, 0);
        if (f > 0 && (uint64_t)f > here)
            here = (uint64_t)f;
    }
    return here;
}

/* Below this many expanded bytes the ratio is not held against an archive:
 * a few hundred bytes of repetitive text legitimately expand 100-fold. */
#define RATIO_FLOOR ((uint64_t)1 << 20)

/* The ratio limit in bytes for this archive; UINT64_MAX when it overflows. */
static uint64_t ratio_cap(const struct walk *w)
{
    uint64_t r = w->lim->max_ratio, n = w->len;
    uint64_t cap = r != 0 && n > UINT64_MAX / r ? UINT64_MAX : r * n;
    return cap < RATIO_FLOOR ? RATIO_FLOOR : cap;
}

/* Brings budget->expanded up to date with this archive's expansion and
 * checks the limits. */
static int account(struct walk *w)
{
    const struct archive_limits *lim = w->lim;
    uint64_t here = expanded_here(w);
    if (here > w->counted) {
        uint64_t d = here - w->counted;
        w->budget->expanded = w->budget->expanded > UINT64_MAX - d ? UINT64_MAX
                                                                  : w->budget->expanded + d;
        w->counted = here;
    }
    if (w->budget->expanded > lim->max_expanded)
        return sage_err_set(w->err, SAGE_ELIMIT,
                            "archive '%s': zip bomb defence: expanded bytes exceed %" PRIu64,
                            w->name, lim->max_expanded);
    if (here > ratio_cap(w))
        return sage_err_set(w->err, SAGE_ELIMIT,
                            "archive '%s': zip bomb defence: expansion ratio above %" PRIu64,
                            w->name, lim->max_ratio);
    return 0;
}

/* How many more bytes may come out before a limit trips (account() having
 * passed, so neither is exceeded yet). */
static uint64_t headroom(const struct walk *w)
{
    uint64_t budget = w->lim->max_expanded - w->budget->expanded;
    uint64_t ratio = ratio_cap(w) - w->counted;
    return budget < ratio ? budget : ratio;
}

static int broken(struct walk *w)
{
    const char *why = archive_error_string(w->a);
    return sage_err_set(w->err, SAGE_ECORRUPT, "cannot read archive '%s': %s", w->name,
                        why ? why : "unknown libarchive error");
}

/* Whether a failed archive_read_data was about encryption. libarchive has no
 * error code for it, only the entry's flags and the message. */
static int encryption_error(struct walk *w)
{
    const char *why = archive_error_string(w->a);
    return archive_entry_is_encrypted(w->entry) ||
           (why && (strstr(why, "ncrypt") || strstr(why, "assphrase")));
}

/* ---- members ---- */

/* Reads the rest of the current member only to count its bytes. */
static int drain(struct walk *w)
{
    uint8_t tmp[DRAIN_BLOCK];
    for (;;) {
        la_ssize_t k = archive_read_data(w->a, tmp, sizeof(tmp));
        if (k == 0)
            return 0;
        if (k < 0)
            return encryption_error(w) && k != ARCHIVE_FATAL ? 0 : broken(w);
        w->data_bytes += (uint64_t)k;
        int rc = account(w);
        if (rc < 0)
            return rc;
    }
}

/* Moves past a member we do not keep. Where libarchive skips by seeking (zip
 * with known sizes, uncompressed tar) we let it; where skipping means
 * decompressing (a compressed stream, 7z's solid blocks, zip of unknown size)
 * we read the bytes ourselves so that they count against the limits. */
static int pass(struct walk *w)
{
    int fmt = archive_format(w->a) & ARCHIVE_FORMAT_BASE_MASK;
    if (archive_entry_is_encrypted(w->entry))
        return 0;   /* unreadable; libarchive steps over it */
    if (!w->filtered && (fmt == ARCHIVE_FORMAT_TAR ||
                         (fmt == ARCHIVE_FORMAT_ZIP && archive_entry_size_is_set(w->entry))))
        return 0;
    return drain(w);
}

/* What read_member found. */
enum got { GOT_ALL, GOT_TOO_BIG, GOT_ENCRYPTED };

/* Reads the current member into w->buf, growing it up to the member limit,
 * and sets *len to its size. A member bigger than the limit is read only one
 * byte past it (GOT_TOO_BIG); data that proves encrypted only as it is read
 * gives GOT_ENCRYPTED. */
static int read_member(struct walk *w, size_t *len, enum got *got)
{
    size_t n = 0;
    la_ssize_t k;
    *len = 0;
    *got = GOT_ALL;
    for (;;) {
        if (n == w->cap && w->cap < w->keep) {
            /* Double, but never past the member limit, nor past what the
             * limits let come out (plus the byte that trips them): a bomb
             * never gets a buffer its size. */
            size_t cap = w->cap < READ_BLOCK ? READ_BLOCK : w->cap * 2;
            uint64_t room = headroom(w);
            if (cap > w->keep || cap < w->cap)
                cap = w->keep;
            if (room < (uint64_t)(cap - n) - 1)
                cap = n + (size_t)room + 1;
            uint8_t *p = sage_realloc(w->buf, cap);
            if (!p)
                return sage_err_set(w->err, SAGE_ENOMEM,
                                    "archive '%s': no memory for a %zu-byte member", w->name, cap);
            w->buf = p;
            w->cap = cap;
        }
        if (n == w->cap) {
            /* At the member limit: one more byte makes the member too large. */
            uint8_t probe[1];
            k = archive_read_data(w->a, probe, sizeof(probe));
            if (k > 0)
                *got = GOT_TOO_BIG;
        } else {
            k = archive_read_data(w->a, w->buf + n, w->cap - n < READ_BLOCK ? w->cap - n : READ_BLOCK);
        }
        if (k < 0)
            break;
        if (k == 0) {
            *len = n;
            return 0;
        }
        n += (size_t)k;
        w->data_bytes += (uint64_t)k;
        int rc = account(w);
        if (rc < 0 || *got == GOT_TOO_BIG)
            return rc;
    }
    if (k != ARCHIVE_FATAL && encryption_error(w)) {
        *got = GOT_ENCRYPTED;
        return 0;
    }
    return broken(w);
}

static void skip(struct walk *w, archive_skip_fn on_skip, void *ctx, const char *path,
                 const char *why)
{
    if (!on_skip)
        return;
    leave(w);
    on_skip(ctx, path, why);
    enter(w);
}

/* Handles the current entry: delivers it, or reports why not. Returns what
 * on_member returned, or a negative error. */
static int member(struct walk *w, archive_member_fn on_member, archive_skip_fn on_skip,
                  void *ctx)
{
    struct archive_entry *e = w->entry;
    char refused[SHOWN_MAX + 1];
    if (archive_format(w->a) == ARCHIVE_FORMAT_RAW) {
        raw_name(w->name, w->path);
    } else {
        const char *raw = archive_entry_pathname_utf8(e);
        if (!raw)
            raw = archive_entry_pathname(e);   /* checked as UTF-8 below */
        if (!raw || sanitize(raw, w->path) < 0) {
            shown(raw, refused, sizeof(refused));
            skip(w, on_skip, ctx, refused, "unsafe name");
            return pass(w);
        }
    }
    if (archive_entry_filetype(e) == AE_IFDIR)
        return pass(w);     /* a folder: its files are entries of their own */
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) ||
        archive_entry_symlink(e)) {
        skip(w, on_skip, ctx, w->path, "not a regular file");
        return pass(w);
    }
    if (archive_entry_is_encrypted(e)) {
        skip(w, on_skip, ctx, w->path, "encrypted");
        return 0;
    }
    size_t len;
    enum got got;
    int rc = read_member(w, &len, &got);
    if (rc < 0)
        return rc;
    if (got == GOT_ENCRYPTED) {
        skip(w, on_skip, ctx, w->path, "encrypted");
        return 0;
    }
    if (got == GOT_TOO_BIG) {
        skip(w, on_skip, ctx, w->path, "larger than the member limit");
        return pass(w);
    }
    if (!on_member)
        return 0;
    static const uint8_t none[1];
    leave(w);
    rc = on_member(ctx, w->path, len ? w->buf : none, len);
    enter(w);
    return rc;
}

/* Each format and filter we read, and nothing else: no program is run for a
 * filter libarchive lacks, and no format that reads other files (mtree). */
static int setup(struct archive *a, int raw, struct sage_err *err)
{
    static const struct {
        const char *what;
        int (*add)(struct archive *);
    } parts[] = {
        { "zip", archive_read_support_format_zip },
        { "tar", archive_read_support_format_tar },
        { "7z", archive_read_support_format_7zip },
        { "gzip", archive_read_support_filter_gzip },
        { "bzip2", archive_read_support_filter_bzip2 },
        { "xz", archive_read_support_filter_xz },
        { "zstd", archive_read_support_filter_zstd },
        { "raw", archive_read_support_format_raw },
    };
    size_t n = sizeof(parts) / sizeof(parts[0]) - (raw ? 0 : 1);
    for (size_t i = 0; i < n; i++)
        if (parts[i].add(a) != ARCHIVE_OK)
            return sage_err_set(err, SAGE_EIO, "libarchive cannot read %s in-process: %s",
                                parts[i].what, archive_error_string(a) ? archive_error_string(a) : "?");
    return 0;
}

int archive_walk(const char *name, const uint8_t *data, size_t len,
                 const struct archive_limits *lim, struct archive_budget *budget,
                 unsigned depth, archive_member_fn on_member, archive_skip_fn on_skip,
                 void *ctx, struct sage_err *err)
{
    int rc = 0, compressed;
    struct walk *w = NULL;
    const char *shown_name = name ? name : "";
    if (!lim || !budget || (!data && len > 0)) {
        rc = sage_err_set(err, SAGE_EINVAL, "archive '%s': no limits, budget or data", shown_name);
        goto out;
    }
    if (depth > lim->max_depth) {
        rc = sage_err_set(err, SAGE_ELIMIT, "archive '%s': nested deeper than %u archives",
                          shown_name, lim->max_depth);
        goto out;
    }
    w = sage_calloc(1, sizeof(*w));
    if (!w) {
        rc = sage_err_set(err, SAGE_ENOMEM, "archive '%s': out of memory", shown_name);
        goto out;
    }
    w->name = shown_name;
    w->len = len;
    w->lim = lim;
    w->budget = budget;
    w->err = err;
    w->keep = lim->max_member > SIZE_MAX ? SIZE_MAX : (size_t)lim->max_member;
    /* C.UTF-8 for names; without it (not glibc), the caller's locale. */
    w->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    enter(w);
    w->a = archive_read_new();
    if (!w->a) {
        rc = sage_err_set(err, SAGE_ENOMEM, "archive '%s': out of memory", shown_name);
        goto out;
    }
    /* The raw format takes anything, so it is offered only behind the magic
     * of a compressed stream: a text file is never an archive. */
    compressed = compressed_magic(data, len);
    rc = setup(w->a, compressed, err);
    if (rc < 0)
        goto out;
    static const uint8_t empty[1];
    if (archive_read_open_memory(w->a, len ? data : empty, len) != ARCHIVE_OK) {
        rc = broken(w);
        goto out;
    }
    for (;;) {
        int r = archive_read_next_header(w->a, &w->entry);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = broken(w);
            goto out;
        }
        w->filtered = archive_filter_count(w->a) > 1;
        if (archive_format(w->a) == ARCHIVE_FORMAT_RAW && !w->filtered) {
            rc = sage_err_set(err, SAGE_ECORRUPT,
                              "cannot read archive '%s': not an archive or compressed file",
                              shown_name);
            goto out;
        }
        rc = account(w);
        if (rc < 0)
            goto out;
        if (budget->entries++ >= lim->max_entries) {
            rc = sage_err_set(err, SAGE_ELIMIT, "archive '%s': more than %" PRIu64 " entries",
                              shown_name, lim->max_entries);
            goto out;
        }
        rc = member(w, on_member, on_skip, ctx);
        if (rc != 0)
            goto out;
    }
    rc = account(w);
out:
    if (w) {
        archive_read_free(w->a);
        leave(w);
        if (w->utf8)
            freelocale(w->utf8);
        sage_free(w->buf);
    }
    sage_free(w);
    return rc;
}
