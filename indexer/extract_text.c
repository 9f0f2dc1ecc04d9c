/* Line-oriented heading detection for Markdown and RST; see extract_text.h. */
#include "extract_text.h"

#include <string.h>

#include "alloc.h"

#define LEVELS 6

struct hstack {
    char *name[LEVELS];     /* owned */
    char path[1024];
};

static void hs_set(struct hstack *h, int level, const char *s, size_t n)
{
    for (int i = level; i < LEVELS; i++) {
        sage_free(h->name[i]);
        h->name[i] = NULL;
    }
    h->name[level] = sage_malloc(n + 1);
    if (h->name[level]) {
        memcpy(h->name[level], s, n);
        h->name[level][n] = '\0';
    }
    size_t o = 0;
    h->path[0] = '\0';
    for (int i = 0; i < LEVELS; i++)
        if (h->name[i] && o < sizeof(h->path))
            o += (size_t)snprintf(h->path + o, sizeof(h->path) - o, "%s%s", o ? " > " : "",
                                  h->name[i]);
}

static void hs_release(struct hstack *h)
{
    for (int i = 0; i < LEVELS; i++)
        sage_free(h->name[i]);
}

static int all_char(const char *s, size_t n, char c)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != c)
            return 0;
    return 1;
}

static int rst_adornment(const char *s, size_t n)
{
    static const char marks[] = "=-~^\"'`#*+:._";
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
        n--;
    return n >= 3 && strchr(marks, s[0]) && all_char(s, n, s[0]);
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* Drops the optional closing "#" run of an ATX heading (trimmed text): only
 * one that is the whole text or follows a space, so "C#" keeps its "#". */
static void atx_unclose(const char **s, size_t *n)
{
    size_t k = *n;
    while (k && (*s)[k - 1] == '#')
        k--;
    if (k < *n && (k == 0 || (*s)[k - 1] == ' ' || (*s)[k - 1] == '\t')) {
        *n = k;
        trim(s, n);
    }
}

struct state {
    struct extracted *out;
    struct hstack hs;
    const char *block;      /* start of the text since the last heading */
    const char *title;
    size_t title_len;
    int title_level;
    int rst_marks[LEVELS];  /* adornment styles: the character, + 256 when overlined */
    int n_rst_marks;
};

static int flush(struct state *st, const char *end, struct sage_err *err)
{
    int rc = 0;
    if (st->block && end > st->block)
        rc = extracted_add(st->out, st->block, (size_t)(end - st->block),
                           st->hs.path[0] ? st->hs.path : NULL, 0, err);
    st->block = NULL;
    return rc;
}

static int heading(struct state *st, int level, const char *s, size_t n, const char *line,
                   const char *next, struct sage_err *err)
{
    trim(&s, &n);
    if (n == 0)
        return 0;
    int rc = flush(st, line, err);
    if (rc < 0)
        return rc;
    if (level >= LEVELS)
        level = LEVELS - 1;
    hs_set(&st->hs, level, s, n);
    if (!st->title || level < st->title_level) {
        st->title = s;
        st->title_len = n;
        st->title_level = level;
    }
    st->block = next;
    return 0;
}

static int rst_level(struct state *st, int mark)
{
    for (int i = 0; i < st->n_rst_marks; i++)
        if (st->rst_marks[i] == mark)
            return i;
    if (st->n_rst_marks < LEVELS)
        st->rst_marks[st->n_rst_marks++] = mark;
    return st->n_rst_marks - 1;
}

int extract_text(const uint8_t *data, size_t len, enum text_kind kind, struct extracted *out,
                 struct sage_err *err)
{
    const char *t = (const char *)data, *end = t + len, *p = t;
    struct state st = { .out = out };
    const char *first_line = NULL, *prev = NULL;     /* prev: the line before p */
    size_t first_len = 0, prev_n = 0;
    int fence = 0, rc = 0;
    st.block = t;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        size_t n = (size_t)(le - p);
        const char *s = p;
        size_t sn = n;
        trim(&s, &sn);
        if (!first_line && sn) {
            first_line = s;
            first_len = sn;
        }
        /* the line after this one, for setext and RST underlines */
        const char *nl2 = next < end ? memchr(next, '\n', (size_t)(end - next)) : NULL;
        size_t n2 = next < end ? (size_t)((nl2 ? nl2 : end) - next) : 0;
        const char *after = nl2 ? nl2 + 1 : end;
        if (kind == TEXT_MARKDOWN) {
            if (n >= 3 && (memcmp(p, "```", 3) == 0 || memcmp(p, "~~~", 3) == 0))
                fence = !fence;
            else if (!fence && n > 1 && p[0] == '#') {
                int level = 0;
                while (level < (int)n && p[level] == '#')
                    level++;
                if (level <= 6 && level < (int)n && p[level] == ' ') {
                    const char *h = p + level;
                    size_t hn = n - (size_t)level;
                    trim(&h, &hn);
                    atx_unclose(&h, &hn);
                    rc = heading(&st, level - 1, h, hn, p, next, err);
                    p = next;
                    continue;
                }
            } else if (!fence && sn && n2 >= 2 && p[0] != ' ' &&
                       (all_char(next, n2 - (next[n2 - 1] == '\r'), '=') ||
                        all_char(next, n2 - (next[n2 - 1] == '\r'), '-'))) {
                rc = heading(&st, next[0] == '=' ? 0 : 1, p, n, p, after, err);
                p = after;
                continue;
            }
        } else if (kind == TEXT_RST && sn && next < end) {
            if (rst_adornment(next, n2) && n2 >= sn && !rst_adornment(p, n)) {
                /* an overline of the same character belongs to the title */
                int over = prev && rst_adornment(prev, prev_n) && prev[0] == next[0];
                int mark = (unsigned char)next[0] + (over ? 256 : 0);
                rc = heading(&st, rst_level(&st, mark), p, n, over ? prev : p, after, err);
                prev = NULL;
                p = after;
                continue;
            }
        }
        prev = p;
        prev_n = n;
        p = next;
    }
    if (rc == 0)
        rc = flush(&st, end, err);
    if (rc == 0) {
        if (st.title)
            rc = extracted_set_title(out, st.title, st.title_len, err);
        else if (first_line) {
            size_t tl = first_len;
            if (tl > 120) {     /* cut on a character boundary */
                tl = 120;
                while (tl > 0 && ((unsigned char)first_line[tl] & 0xc0) == 0x80)
                    tl--;
            }
            rc = extracted_set_title(out, first_line, tl, err);
        }
    }
    hs_release(&st.hs);
    return rc;
}
