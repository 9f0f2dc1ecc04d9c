/* HTML to text blocks: libxml2's forgiving HTML parser builds a tree, and one
 * iterative walk (no recursion, no stack) turns it into a title and blocks of
 * whitespace-collapsed text, one per run of text under an h1..h6 heading
 * path. Cleaning the text (UTF-8, NFC) and the total cap are extracted_add's
 * business. *out is overwritten on entry and left empty on failure. libxml2
 * should be initialized (xmlInitParser, which we call too) before threads use
 * it; the parser is then thread-safe. */
#include "extract.h"

#include <limits.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/globals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "alloc.h"

#define HTML_MAX_DEPTH 256          /* deeper subtrees are not visited */
#define HTML_MAX_HEADING 512        /* bytes kept of one heading's text */
#define HTML_MAX_TITLE (16 << 10)   /* bytes gathered from <title> */
#define HTML_SNIFF_LEN 1024         /* where a charset declaration must appear */

enum el_flags {
    EL_SKIP = 1u << 0,      /* drop the element and everything in it */
    EL_LINE = 1u << 1,      /* a line break before and after */
    EL_PARA = 1u << 2,      /* a blank line before and after */
    EL_CELL = 1u << 3,      /* a space before and after: table cells */
    EL_PRE = 1u << 4,       /* whitespace inside is kept */
    EL_HEAD = 1u << 5,      /* <head>: only its <title> counts */
    EL_TITLE = 1u << 6,
};

struct el {
    const char *name;
    unsigned flags;
};

/* Sorted by name for bsearch; libxml2 lower-cases HTML element names. Anything
 * not listed is inline: it adds no separator. */
static const struct el elements[] = {
    { "address", EL_PARA },    { "article", EL_PARA },    { "aside", EL_PARA },
    { "blockquote", EL_PARA }, { "body", EL_LINE },       { "br", EL_LINE },
    { "caption", EL_LINE },    { "center", EL_PARA },     { "dd", EL_LINE },
    { "details", EL_PARA },    { "dialog", EL_PARA },     { "dir", EL_PARA },
    { "div", EL_LINE },        { "dl", EL_PARA },         { "dt", EL_LINE },
    { "fieldset", EL_PARA },   { "figcaption", EL_LINE }, { "figure", EL_PARA },
    { "footer", EL_PARA },     { "form", EL_PARA },       { "frame", EL_LINE },
    { "frameset", EL_LINE },   { "h1", EL_PARA },         { "h2", EL_PARA },
    { "h3", EL_PARA },         { "h4", EL_PARA },         { "h5", EL_PARA },
    { "h6", EL_PARA },         { "head", EL_HEAD },       { "header", EL_PARA },
    { "hgroup", EL_PARA },     { "hr", EL_PARA },         { "html", EL_LINE },
    { "iframe", EL_LINE },     { "legend", EL_LINE },     { "li", EL_LINE },
    { "listing", EL_PARA | EL_PRE }, { "main", EL_PARA }, { "menu", EL_PARA },
    { "nav", EL_PARA },        { "noframes", EL_LINE },   { "noscript", EL_SKIP },
    { "ol", EL_PARA },         { "optgroup", EL_LINE },   { "option", EL_LINE },
    { "p", EL_PARA },          { "plaintext", EL_PARA | EL_PRE }, { "pre", EL_PARA | EL_PRE },
    { "script", EL_SKIP },     { "section", EL_PARA },    { "select", EL_LINE },
    { "style", EL_SKIP },      { "summary", EL_LINE },    { "svg", EL_SKIP },
    { "table", EL_PARA },      { "tbody", EL_LINE },      { "td", EL_CELL },
    { "template", EL_SKIP },   { "textarea", EL_LINE | EL_PRE }, { "tfoot", EL_LINE },
    { "th", EL_CELL },         { "thead", EL_LINE },      { "title", EL_TITLE },
    { "tr", EL_LINE },         { "ul", EL_PARA },         { "xmp", EL_PARA | EL_PRE },
};

static int el_cmp(const void *key, const void *e)
{
    return strcmp(key, ((const struct el *)e)->name);
}

static unsigned el_flags(const xmlNode *n)
{
    const struct el *e = bsearch(n->name, elements, sizeof(elements) / sizeof(elements[0]),
                                 sizeof(elements[0]), el_cmp);
    return e ? e->flags : 0;
}

/* 1..6 for h1..h6, else 0. */
static int heading_level(const xmlNode *n)
{
    const char *s = (const char *)n->name;
    return s[0] == 'h' && s[1] >= '1' && s[1] <= '6' && s[2] == '\0' ? s[1] - '0' : 0;
}

/* Pending whitespace, strongest wins; emitted only between two pieces of text,
 * so text never starts or ends with it. */
enum sep { SEP_NONE, SEP_SPACE, SEP_LINE, SEP_PARA };

/* Text under construction, with a cap: past it, a buffer either fails
 * (-SAGE_ELIMIT) or, with cut set, silently stops growing. */
struct tbuf {
    char *p;
    size_t len, cap, max;
    enum sep pend;
    int cut;
};

static int tb_put(struct tbuf *b, const char *s, size_t n)
{
    if (n > b->max - b->len) {
        if (!b->cut)
            return -SAGE_ELIMIT;
        n = b->max - b->len;
        while (n > 0 && ((uint8_t)s[n] & 0xC0) == 0x80)     /* whole characters only */
            n--;
        b->max = b->len + n;
    }
    if (n == 0)
        return 0;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = sage_realloc(b->p, cap);
        if (!p)
            return -SAGE_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int is_html_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Emits the pending separator. Whitespace already at the end (from <pre>)
 * gives way to it, so text never gains more than one blank line. */
static int tb_flush_sep(struct tbuf *b)
{
    static const char *const seps[] = { "", " ", "\n", "\n\n" };
    enum sep s = b->pend;
    b->pend = SEP_NONE;
    if (b->len == 0 || s == SEP_NONE)
        return 0;
    if (is_html_space((uint8_t)b->p[b->len - 1])) {
        if (s == SEP_SPACE)
            return 0;
        while (b->len > 0 && is_html_space((uint8_t)b->p[b->len - 1]))
            b->len--;
    }
    return tb_put(b, seps[s], strlen(seps[s]));
}

static void tb_sep(struct tbuf *b, enum sep s)
{
    if (s > b->pend)
        b->pend = s;
}

static void tb_reset(struct tbuf *b)
{
    b->len = 0;
    b->pend = SEP_NONE;
    if (b->p)
        b->p[0] = '\0';
}

/* Appends text, collapsing each whitespace run into a pending space; with
 * raw set (inside <pre>), appends it as it is. */
static int tb_text(struct tbuf *b, const char *s, size_t n, int raw)
{
    int rc = 0;
    if (raw) {
        if (n > 0 && (rc = tb_flush_sep(b)) == 0)
            rc = tb_put(b, s, n);
        return rc;
    }
    size_t i = 0;
    while (i < n && rc == 0) {
        if (is_html_space((uint8_t)s[i])) {
            tb_sep(b, SEP_SPACE);
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !is_html_space((uint8_t)s[j]))
            j++;
        if ((rc = tb_flush_sep(b)) == 0)
            rc = tb_put(b, s + i, j - i);
        i = j;
    }
    return rc;
}

struct walker {
    struct extracted *out;
    struct tbuf text;               /* the block under construction */
    struct tbuf heading;            /* text of the heading being read */
    struct tbuf title;              /* text of <title> being read */
    struct tbuf path;               /* scratch for the joined heading path */
    char *levels[6];                /* current h1..h6 texts, owned; NULL: none */
    char *first_h1;                 /* fallback title, owned */
    const xmlNode *in_heading;      /* the heading element being read, if any */
    int in_heading_level;
    const xmlNode *in_title;        /* the <title> element being read, if any */
    int saw_title;                  /* a <title> was read (even an empty one) */
    int pre_depth, head_depth;
    int pre_fresh;                  /* just entered <pre>: drop one leading newline */
};

static char *dup_text(const struct tbuf *b)
{
    char *s = sage_malloc(b->len + 1);
    if (s) {
        if (b->len)
            memcpy(s, b->p, b->len);
        s[b->len] = '\0';
    }
    return s;
}

/* Adds the block under construction, if any, under the current heading path. */
static int flush_block(struct walker *w, struct sage_err *err)
{
    struct tbuf *t = &w->text;
    while (t->len > 0 && is_html_space((uint8_t)t->p[t->len - 1]))
        t->len--;
    if (t->len == 0) {
        tb_reset(t);
        return 0;
    }
    tb_reset(&w->path);
    for (int i = 0; i < 6; i++) {
        if (!w->levels[i] || !w->levels[i][0])
            continue;
        if ((w->path.len > 0 && tb_put(&w->path, " > ", 3) < 0) ||
            tb_put(&w->path, w->levels[i], strlen(w->levels[i])) < 0)
            return sage_err_set(err, SAGE_ENOMEM, "out of memory for a heading path");
    }
    int rc = extracted_add(w->out, t->p, t->len, w->path.len ? w->path.p : NULL, 0, err);
    tb_reset(t);
    t->max = EXTRACT_MAX_TEXT - w->out->total_len;
    return rc;
}

static int text_error(int rc, struct sage_err *err)
{
    if (rc == -SAGE_ELIMIT)
        return sage_err_set(err, SAGE_ELIMIT, "html text exceeds %zu bytes", EXTRACT_MAX_TEXT);
    return sage_err_set(err, SAGE_ENOMEM, "out of memory for html text");
}

/* A text node: to the title, the heading or the block being read. */
static int on_text(struct walker *w, const xmlNode *n, struct sage_err *err)
{
    const char *s = (const char *)n->content;
    size_t len = s ? strlen(s) : 0;
    int rc = 0;
    if (w->in_title)
        rc = tb_text(&w->title, s, len, 0);
    else if (w->head_depth > 0)
        return 0;
    else if (w->in_heading)
        rc = tb_text(&w->heading, s, len, 0);
    else {
        if (w->pre_depth > 0 && w->pre_fresh && len > 0) {
            if (s[0] == '\r')
                s++, len--;
            if (len > 0 && s[0] == '\n')
                s++, len--;
        }
        rc = tb_text(&w->text, s, len, w->pre_depth > 0);
    }
    w->pre_fresh = 0;
    return rc < 0 ? text_error(rc, err) : 0;
}

/* Sets the separator an element implies, in whichever buffer is being read. */
static void separate(struct walker *w, unsigned flags)
{
    enum sep s = flags & EL_PARA ? SEP_PARA : flags & EL_LINE ? SEP_LINE
               : flags & EL_CELL ? SEP_SPACE : SEP_NONE;
    if (s == SEP_NONE)
        return;
    if (w->in_title)
        tb_sep(&w->title, SEP_SPACE);
    else if (w->in_heading)
        tb_sep(&w->heading, SEP_SPACE);
    else
        tb_sep(&w->text, s);
}

/* Entering an element; returns 1 when its children are to be visited. */
static int on_enter(struct walker *w, const xmlNode *n, struct sage_err *err)
{
    unsigned flags = el_flags(n);
    int level = heading_level(n);
    if (flags & EL_SKIP)
        return 0;
    separate(w, flags);
    if (flags & EL_HEAD)
        w->head_depth++;
    if (flags & EL_PRE) {
        w->pre_depth++;
        w->pre_fresh = 1;
    }
    if ((flags & EL_TITLE) && !w->saw_title && !w->in_title && !w->in_heading) {
        w->in_title = n;
        tb_reset(&w->title);
    }
    if (level && !w->in_heading && !w->in_title && w->head_depth == 0) {
        int rc = flush_block(w, err);
        if (rc < 0)
            return rc;
        w->in_heading = n;
        w->in_heading_level = level;
        tb_reset(&w->heading);
    }
    return 1;
}

/* Leaving an element (visited or not): undoes what on_enter did. */
static int on_leave(struct walker *w, const xmlNode *n, struct sage_err *err)
{
    unsigned flags = el_flags(n);
    int rc = 0;
    if (flags & EL_SKIP)
        return 0;
    if (n == w->in_title) {
        w->in_title = NULL;
        w->saw_title = 1;
        rc = extracted_set_title(w->out, w->title.p, w->title.len, err);
        if (rc < 0)
            return rc;
    }
    if (n == w->in_heading) {
        int i = w->in_heading_level - 1;
        char *s = dup_text(&w->heading);
        if (!s)
            return sage_err_set(err, SAGE_ENOMEM, "out of memory for a heading");
        for (int j = i; j < 6; j++) {
            sage_free(w->levels[j]);
            w->levels[j] = NULL;
        }
        w->levels[i] = s;
        if (i == 0 && !w->first_h1 && w->heading.len > 0 && !(w->first_h1 = dup_text(&w->heading)))
            return sage_err_set(err, SAGE_ENOMEM, "out of memory for a heading");
        w->in_heading = NULL;
    }
    if (flags & EL_HEAD)
        w->head_depth--;
    if (flags & EL_PRE) {
        w->pre_depth--;
        w->pre_fresh = 0;
    }
    separate(w, flags);
    return 0;
}

/* Visits the tree in document order without recursion: the parent pointers
 * are the stack. Subtrees deeper than HTML_MAX_DEPTH are skipped. */
static int walk(struct walker *w, xmlDoc *doc, struct sage_err *err)
{
    xmlNode *n = doc->children;
    int depth = 1, rc = 0;
    while (n) {
        int down = 0;
        if (n->type == XML_ELEMENT_NODE)
            down = on_enter(w, n, err);
        else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
            down = on_text(w, n, err);
        if (down < 0)
            return down;
        if (down > 0 && n->children && depth < HTML_MAX_DEPTH) {
            n = n->children;
            depth++;
            continue;
        }
        /* n is done: leave it, then each ancestor whose last child it was. */
        for (;;) {
            if (n->type == XML_ELEMENT_NODE && (rc = on_leave(w, n, err)) < 0)
                return rc;
            if (n->next) {
                n = n->next;
                break;
            }
            n = n->parent;
            if (--depth == 0 || !n || n == (xmlNode *)doc) {
                n = NULL;
                break;
            }
        }
    }
    return 0;
}

static int ci_starts(const uint8_t *p, size_t n, const char *word)
{
    size_t k = strlen(word);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if ((p[i] | 0x20) != (uint8_t)word[i])
            return 0;
    return 1;
}

/* The encoding to hand libxml2: NULL (let it detect) when the first bytes
 * declare a charset or carry a UTF-16 byte order mark, the name from an XML
 * declaration, else UTF-8 (libxml2 would guess Latin-1 and mangle UTF-8). */
static const char *pick_encoding(const uint8_t *d, size_t n, char *buf, size_t size)
{
    size_t m = n < HTML_SNIFF_LEN ? n : HTML_SNIFF_LEN;
    if (m >= 2 && ((d[0] == 0xFE && d[1] == 0xFF) || (d[0] == 0xFF && d[1] == 0xFE)))
        return NULL;
    for (size_t i = 0; i < m; i++)
        if (ci_starts(d + i, m - i, "charset"))
            return NULL;
    if (ci_starts(d, m, "<?xml")) {
        for (size_t i = 5; i < m && d[i] != '>'; i++) {
            if (!ci_starts(d + i, m - i, "encoding"))
                continue;
            size_t j = i + 8;
            while (j < m && (d[j] == ' ' || d[j] == '='))
                j++;
            if (j >= m || (d[j] != '"' && d[j] != '\''))
                break;
            uint8_t q = d[j++];
            size_t k = 0;
            while (j < m && d[j] != q && k + 1 < size &&
                   (d[j] == '-' || d[j] == '_' || d[j] == '.' || d[j] == ':' ||
                    (d[j] >= '0' && d[j] <= '9') || ((d[j] | 0x20) >= 'a' && (d[j] | 0x20) <= 'z')))
                buf[k++] = (char)d[j++];
            buf[k] = '\0';
            if (j < m && d[j] == q && k > 0)
                return buf;
            break;
        }
    }
    return "UTF-8";
}

/* libxml2 reports some errors (bad bytes for the declared encoding, say)
 * through its generic handler whatever the parser options, and that one
 * prints to stderr. The handlers are per-thread state in libxml2, so we
 * silence them for the parse in this thread only and restore them after. */
static void quiet_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void quiet_structured(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

int extract_html(const uint8_t *data, size_t len, struct extracted *out, struct sage_err *err)
{
    struct walker w = {
        .out = out,
        .text = { .max = EXTRACT_MAX_TEXT },
        .heading = { .max = HTML_MAX_HEADING, .cut = 1 },
        .title = { .max = HTML_MAX_TITLE, .cut = 1 },
        .path = { .max = (size_t)-1 / 2 },
    };
    htmlParserCtxtPtr ctxt = NULL;
    htmlDocPtr doc = NULL;
    char enc_buf[48];
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (!data && len)
        return sage_err_set(err, SAGE_EINVAL, "extract_html: no data");
    if (len > INT_MAX)
        return sage_err_set(err, SAGE_ELIMIT, "html file exceeds %d bytes", INT_MAX);
    if (len == 0)
        return 0;
    xmlInitParser();
    ctxt = htmlNewParserCtxt();
    if (!ctxt) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for an html parser");
        goto out;
    }
    xmlGenericErrorFunc old_generic = xmlGenericError;
    void *old_generic_ctx = xmlGenericErrorContext;
    xmlStructuredErrorFunc old_structured = xmlStructuredError;
    void *old_structured_ctx = xmlStructuredErrorContext;
    xmlSetGenericErrorFunc(NULL, quiet_generic);
    xmlSetStructuredErrorFunc(NULL, quiet_structured);
    doc = htmlCtxtReadMemory(ctxt, (const char *)data, (int)len, NULL,
                             pick_encoding(data, len, enc_buf, sizeof(enc_buf)),
                             HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                             HTML_PARSE_RECOVER);
    xmlSetGenericErrorFunc(old_generic_ctx, old_generic);
    xmlSetStructuredErrorFunc(old_structured_ctx, old_structured);
    if (ctxt->errNo == XML_ERR_NO_MEMORY) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory parsing html");
        goto out;
    }
    if (!doc)     /* nothing the parser could make a document of: no text */
        goto out;
    if ((rc = walk(&w, doc, err)) < 0 || (rc = flush_block(&w, err)) < 0)
        goto out;
    if (!out->title && w.first_h1)
        rc = extracted_set_title(out, w.first_h1, strlen(w.first_h1), err);
out:
    if (rc < 0)
        extracted_release(out);
    xmlFreeDoc(doc);
    htmlFreeParserCtxt(ctxt);
    sage_free(w.text.p);
    sage_free(w.heading.p);
    sage_free(w.title.p);
    sage_free(w.path.p);
    sage_free(w.first_h1);
    for (int i = 0; i < 6; i++)
        sage_free(w.levels[i]);
    return rc;
}
