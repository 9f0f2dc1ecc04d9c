/* PDF to text blocks through poppler-glib, isolated in a forked child: the
 * child parses under resource limits and streams frames over a pipe; the
 * parent trusts none of them, enforces the wall-clock deadline, kills and reaps
 * the child, and turns a crash, hang or limit into an error. Pages without
 * text are rendered and read by tesseract or encoded as PNG here, and handed
 * to the caller as OCR requests (extracted.ocr); n_pages counts the pages
 * read, at most max_pages (later pages are not read). *out is overwritten on
 * entry and left empty on failure.
 *
 * The memory limit is headroom: the child starts with the parent's whole
 * address space (thread stacks, malloc arenas, mappings), so its RLIMIT_AS is
 * that size plus max_memory. Under AddressSanitizer, whose allocator reserves
 * its heap up front, only large allocations meet the limit.
 *
 * Fork constraint: the child runs poppler, glib and malloc, which are not
 * async-signal-safe. That is sound only when no other thread holds a lock
 * those use at the moment of fork, so call extract_pdf from a single-threaded
 * process, or from a thread while other threads stay out of glib/poppler
 * (glibc's malloc itself is fork-safe). The child touches nothing of the
 * parent's: it only reads the input (copy-on-write) and leaves with _exit. */
#include "extract.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <math.h>
#include <poppler.h>
#include <tesseract/capi.h>
#include <xxhash.h>

#include "alloc.h"
#include "le.h"
#include "clock.h"

/* Frames, child to parent: u8 type, u32 page, u32 len (little-endian), then
 * len bytes. Pages arrive in order 1, 2, ... and 'D' ends a good run. */
enum frame_type {
    FRAME_TITLE = 'T',      /* page 0, the metadata title */
    FRAME_PAGE = 'P',       /* the page's text, possibly empty */
    FRAME_OCR = 'Q',        /* a page's digest (16 bytes), then the text OCR read */
    FRAME_IMAGE = 'I',      /* a page's digest, then its PNG, for the parent's OCR server */
    FRAME_KNOWN = 'K',      /* a page's digest alone: one of pdf_limits.ocr_known */
    FRAME_ERROR = 'E',      /* page 0, poppler's reason for refusing the file */
    FRAME_DONE = 'D',       /* page 0, len 0 */
};
#define FRAME_HDR 9
#define FRAME_MAX_TITLE (16u << 10)
#define FRAME_MAX_ERROR 512u
#define PDF_MAX_IMAGE ((size_t)32 << 20)    /* PNG of one page */
#define PDF_MAX_PIXELS 40e6                 /* a page is rendered no larger */
#define PDF_MAX_OCR_TEXT ((size_t)1 << 20)  /* text OCR may read off one page */

/* Child exit statuses besides 0. */
#define CHILD_BAD_PDF 3     /* sent FRAME_ERROR */
#define CHILD_SETUP 120     /* could not arrange its fds, signals or limits */
#define CHILD_WRITE 121     /* the parent went away */

#define POLL_TICK_MS 50     /* how often a silent child is checked for exit */
#define STDERR_HEAD 1024    /* bytes kept of the start of the child's stderr */
#define STDERR_KEEP 2048    /* ... and of its end */

/* ---- the child ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* A frame whose body is the hl bytes of head (a page digest, or nothing)
 * followed by n bytes of p. */
static void send_parts(int fd, enum frame_type type, uint32_t page, const uint8_t *head,
                       size_t hl, const void *p, size_t n)
{
    uint8_t hdr[FRAME_HDR];
    if (n > EXTRACT_MAX_TEXT)   /* more than the parent takes: it stops at the header */
        n = EXTRACT_MAX_TEXT + 1;
    hdr[0] = (uint8_t)type;
    sage_put32(hdr + 1, page);
    sage_put32(hdr + 5, (uint32_t)(hl + n));
    if (write_all(fd, hdr, sizeof(hdr)) < 0 || write_all(fd, head, hl) < 0 ||
        write_all(fd, p, n) < 0)
        _exit(CHILD_WRITE);
}

static void send_frame(int fd, enum frame_type type, uint32_t page, const void *p, size_t n)
{
    send_parts(fd, type, page, NULL, 0, p, n);
}

static void send_page_frame(int fd, enum frame_type type, uint32_t page, const uint8_t hash[16],
                            const void *p, size_t n)
{
    send_parts(fd, type, page, hash, 16, p, n);
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* The digest of a rendered page: XXH3-128 of its width, height (u32 LE) and
 * pixel rows (RGB24 as cairo lays it out, without the stride's padding),
 * stored low half then high half, little-endian, as VECTORS stores its. */
static void page_digest(cairo_surface_t *s, int pw, int ph, uint8_t out[16])
{
    XXH3_state_t *st = XXH3_createState();
    uint8_t dims[8];
    const uint8_t *px = cairo_image_surface_get_data(s);
    size_t stride = (size_t)cairo_image_surface_get_stride(s);
    sage_put32(dims, (uint32_t)pw);
    sage_put32(dims + 4, (uint32_t)ph);
    if (!st)
        _exit(CHILD_SETUP);
    XXH3_128bits_reset(st);
    XXH3_128bits_update(st, dims, sizeof(dims));
    for (int y = 0; y < ph; y++)
        XXH3_128bits_update(st, px + (size_t)y * stride, 4 * (size_t)pw);
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    sage_put64(out, h.low64);
    sage_put64(out + 8, h.high64);
}

/* The child's address space at fork, in bytes (0 when unknown): the limit is
 * headroom above it, since the child starts with all of the parent's mappings. */
static size_t child_vm_size(long page_size)
{
    char buf[64];
    size_t pages = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t k = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    for (ssize_t i = 0; i < k && buf[i] >= '0' && buf[i] <= '9'; i++)
        pages = pages * 10 + (size_t)(buf[i] - '0');
    return page_size > 0 && pages < (size_t)-1 / (size_t)page_size ? pages * (size_t)page_size : 0;
}

static int set_limit(int what, rlim_t soft, rlim_t hard)
{
    struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };
    return setrlimit(what, &rl);
}

/* Standard fds to /dev/null except stderr (efd), the frame pipe on fd 3,
 * everything else closed; default signal dispositions; limits. */
static void child_setup(int wfd, int efd, int dfd, const struct pdf_limits *lim, pid_t parent,
                        long page_size)
{
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGPIPE, SIGXCPU,
                                SIGXFSZ, SIGTERM, SIGINT, SIGHUP, SIGCHLD };
    int nul = open("/dev/null", O_RDWR);
    int w = fcntl(wfd, F_DUPFD, 10), e = fcntl(efd, F_DUPFD, 10);
    int d = dfd >= 0 ? fcntl(dfd, F_DUPFD, 10) : -1;   /* before 2-5 are reused */
    int known = dfd >= 0 && lim->n_ocr_known && lim->ocr_known_fd >= 0;
    int kfd = known ? fcntl(lim->ocr_known_fd, F_DUPFD, 10) : -1;
    if ((dfd >= 0 && d < 0) || (known && kfd < 0))
        _exit(CHILD_SETUP);
    int n = nul < 0 ? -1 : fcntl(nul, F_DUPFD, 10);
    if (w < 0 || e < 0 || dup2(e, 2) < 0 || dup2(w, 3) < 0)
        _exit(CHILD_SETUP);
    if (n >= 0) {
        dup2(n, 0);
        dup2(n, 1);
    } else {
        close(0);
        close(1);
    }
    if (d >= 0 && dup2(d, 4) < 0)     /* the document for an exec'd child */
        _exit(CHILD_SETUP);
    if (kfd >= 0 && dup2(kfd, 5) < 0) /* ... and the page digests it may skip */
        _exit(CHILD_SETUP);
    int keep = kfd >= 0 ? 6 : d >= 0 ? 5 : 4;
    if (close_range((unsigned)keep, ~0u, 0) < 0) {
        struct rlimit rl;
        int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur
                                                                               : 65536;
        for (int fd = keep; fd < max; fd++)
            close(fd);
    }
    sigset_t none;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&none);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &dfl, NULL);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        _exit(CHILD_SETUP);
    /* Die with the parent; it may have died before the request took hold. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(CHILD_SETUP);
    rlim_t cpu = (rlim_t)lim->timeout_ms / 1000 + 1;
    if (set_limit(RLIMIT_CPU, cpu, cpu + 1) < 0 || set_limit(RLIMIT_CORE, 0, 0) < 0 ||
        set_limit(RLIMIT_FSIZE, 0, 0) < 0)
        _exit(CHILD_SETUP);
    if (lim->max_memory) {
        size_t vm = child_vm_size(page_size);
        rlim_t as = vm <= (size_t)-1 - lim->max_memory ? (rlim_t)(vm + lim->max_memory)
                                                       : RLIM_INFINITY;
        if (set_limit(RLIMIT_AS, as, as) < 0)
            _exit(CHILD_SETUP);
    }
}

/* Whether a page's text layer holds nothing but blanks. */
static int blank(const char *t)
{
    for (; t && *t; t++)
        if (!(*t == ' ' || (*t >= '\t' && *t <= '\r')))
            return 0;
    return 1;
}

struct png_buf {
    uint8_t *p;
    size_t len, cap;
};

static cairo_status_t png_write(void *ctx, const unsigned char *data, unsigned int n)
{
    struct png_buf *b = ctx;
    if (b->len + n > PDF_MAX_IMAGE ||
        sage_grow((void **)&b->p, &b->cap, b->len + n, 1) < 0)
        return CAIRO_STATUS_WRITE_ERROR;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return CAIRO_STATUS_SUCCESS;
}

/* A page without a text layer: rendered at the OCR resolution (capped in
 * pixels), then read by tesseract here (the text goes as FRAME_OCR) or
 * sent as a PNG for the parent's OCR server (FRAME_IMAGE). A page that
 * cannot be rendered or read goes as an empty FRAME_PAGE, counted as
 * needing OCR. */
static void ocr_page_child(PopplerPage *page, uint32_t no, const struct pdf_limits *lim,
                           TessBaseAPI **tess)
{
    double w, h, scale = (lim->ocr_dpi ? lim->ocr_dpi : 200) / 72.0;
    poppler_page_get_size(page, &w, &h);
    if (w * scale * h * scale > PDF_MAX_PIXELS)
        scale = sqrt(PDF_MAX_PIXELS / (w * h));
    int pw = (int)(w * scale), ph = (int)(h * scale);
    cairo_surface_t *s = pw > 0 && ph > 0 ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph)
                                          : NULL;
    if (!s || cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
        goto none;
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    poppler_page_render_for_printing(page, cr);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    uint8_t hash[16];
    page_digest(s, pw, ph, hash);
    if (lim->n_ocr_known && bsearch(hash, lim->ocr_known, lim->n_ocr_known, 16, cmp_hash)) {
        send_frame(3, FRAME_KNOWN, no, hash, sizeof(hash));
        cairo_surface_destroy(s);
        return;
    }
    if (lim->ocr == PDF_OCR_IMAGES) {
        struct png_buf b = { 0 };
        if (cairo_surface_write_to_png_stream(s, png_write, &b) != CAIRO_STATUS_SUCCESS) {
            sage_free(b.p);
            goto none;
        }
        send_page_frame(3, FRAME_IMAGE, no, hash, b.p, b.len);
        sage_free(b.p);
        cairo_surface_destroy(s);
        return;
    }
    /* tesseract reads 8-bit gray; RGB24 is B, G, R, unused in memory here */
    const uint8_t *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    uint8_t *gray = sage_malloc((size_t)pw * (size_t)ph);
    if (!gray)
        goto none;
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            const uint8_t *q = px + (size_t)y * (size_t)stride + 4 * (size_t)x;
            gray[(size_t)y * (size_t)pw + (size_t)x] = (uint8_t)((q[0] + q[1] + q[2]) / 3);
        }
    if (!*tess) {
        *tess = TessBaseAPICreate();
        if (*tess && TessBaseAPIInit3(*tess, NULL, "eng") != 0) {
            TessBaseAPIDelete(*tess);
            *tess = NULL;
        }
    }
    char *text = NULL;
    if (*tess) {
        TessBaseAPISetImage(*tess, gray, pw, ph, 1, pw);
        TessBaseAPISetSourceResolution(*tess, (int)(scale * 72.0 + 0.5));
        text = TessBaseAPIGetUTF8Text(*tess);
    }
    sage_free(gray);
    cairo_surface_destroy(s);
    if (!text)
        goto none_destroyed;
    send_page_frame(3, FRAME_OCR, no, hash, text, strlen(text) < PDF_MAX_OCR_TEXT
                                                  ? strlen(text) : PDF_MAX_OCR_TEXT);
    TessDeleteText(text);
    return;
none:
    if (s)
        cairo_surface_destroy(s);
none_destroyed:
    send_frame(3, FRAME_PAGE, no, "", 0);
}

static void child_run(const uint8_t *data, size_t len, const struct pdf_limits *lim)
    __attribute__((noreturn));

/* Parses the document and streams what it finds to fd 3. */
static void child_run(const uint8_t *data, size_t len, const struct pdf_limits *lim)
{
    GError *gerr = NULL;
    GBytes *bytes = g_bytes_new_static(data, len);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    if (!doc) {
        const char *msg = gerr && gerr->message ? gerr->message : "unknown error";
        size_t n = strlen(msg);
        send_frame(3, FRAME_ERROR, 0, msg, n < FRAME_MAX_ERROR ? n : FRAME_MAX_ERROR);
        _exit(CHILD_BAD_PDF);
    }
    gchar *title = poppler_document_get_title(doc);
    if (title) {
        size_t n = strlen(title);
        send_frame(3, FRAME_TITLE, 0, title, n < FRAME_MAX_TITLE ? n : FRAME_MAX_TITLE);
        g_free(title);
    }
    int n_pages = poppler_document_get_n_pages(doc);
    TessBaseAPI *tess = NULL;
    for (int i = 0; i < n_pages && (uint32_t)i < lim->max_pages; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        char *text = page ? poppler_page_get_text(page) : NULL;
        if (page && lim->ocr != PDF_OCR_NONE && blank(text))
            ocr_page_child(page, (uint32_t)i + 1, lim, &tess);
        else
            send_frame(3, FRAME_PAGE, (uint32_t)i + 1, text ? text : "", text ? strlen(text) : 0);
        g_free(text);
        if (page)
            g_object_unref(page);
    }
    send_frame(3, FRAME_DONE, 0, "", 0);
    _exit(0);
}

void extract_pdf_child(uint32_t max_pages, int ocr, unsigned ocr_dpi, int known)
{
    struct stat st;
    struct pdf_limits lim = { .max_pages = max_pages, .ocr = ocr, .ocr_dpi = ocr_dpi,
                              .ocr_known_fd = -1 };
    if (known && fstat(5, &st) == 0 && st.st_size >= 16) {
        void *k = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, 5, 0);
        if (k == MAP_FAILED)
            _exit(CHILD_SETUP);
        lim.ocr_known = k;
        lim.n_ocr_known = (size_t)st.st_size / 16;
    }
    void *m = fstat(4, &st) == 0 && st.st_size > 0
              ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, 4, 0) : MAP_FAILED;
    if (m == MAP_FAILED)
        _exit(CHILD_SETUP);
    child_run(m, (size_t)st.st_size, &lim);
}

/* ---- the parent ---- */

/* One run of the child as the parent sees it. */
struct run {
    const struct pdf_limits *lim;
    struct extracted *out;
    pid_t pid;
    int ffd, efd;                   /* read ends: frames, the child's stderr */
    uint8_t hdr[FRAME_HDR];
    size_t hdr_got;
    uint8_t type;                   /* the frame being read, once hdr is complete */
    uint32_t page, len;
    char *body;
    size_t body_got;
    int frames_eof, stderr_eof, done, reaped, status;
    int titled;                     /* a title frame came */
    char bad_pdf[FRAME_MAX_ERROR + 1];      /* poppler's message, printable ASCII */
    char errhead[STDERR_HEAD];      /* the start of the child's stderr */
    char errtail[STDERR_KEEP];      /* the end of the child's stderr */
    size_t errhead_len, errtail_len;
};

static int bad_frame(struct sage_err *err, const char *why, unsigned type)
{
    return sage_err_set(err, SAGE_ECORRUPT, "pdf parser sent a bad frame (type 0x%02x): %s",
                        type, why);
}

/* Checks a complete header before its body is read. */
static int check_header(struct run *r, struct sage_err *err)
{
    r->type = r->hdr[0];
    r->page = sage_le32(r->hdr + 1);
    r->len = sage_le32(r->hdr + 5);
    if (r->done || r->bad_pdf[0])
        return bad_frame(err, "frame after the end", r->type);
    switch (r->type) {
    case FRAME_TITLE:
        if (r->page != 0 || r->len > FRAME_MAX_TITLE || r->titled || r->out->n_pages)
            return bad_frame(err, "bad title", r->type);
        break;
    case FRAME_ERROR:
        if (r->page != 0 || r->len > FRAME_MAX_ERROR || r->out->n_pages)
            return bad_frame(err, "bad error", r->type);
        break;
    case FRAME_DONE:
        if (r->page != 0 || r->len != 0)
            return bad_frame(err, "bad end", r->type);
        break;
    case FRAME_PAGE:
    case FRAME_OCR:
    case FRAME_IMAGE:
    case FRAME_KNOWN:
        if (r->page != r->out->n_pages + 1 || r->page > r->lim->max_pages)
            return bad_frame(err, "page out of order", r->type);
        if ((r->type == FRAME_OCR && r->lim->ocr != PDF_OCR_LOCAL) ||
            (r->type == FRAME_IMAGE && r->lim->ocr != PDF_OCR_IMAGES) ||
            (r->type == FRAME_KNOWN && (r->lim->ocr == PDF_OCR_NONE || !r->lim->n_ocr_known)))
            return bad_frame(err, "unasked for ocr", r->type);
        if (r->type != FRAME_PAGE && (r->len < 16 || (r->type == FRAME_KNOWN && r->len != 16)))
            return bad_frame(err, "bad page digest", r->type);
        if (r->type == FRAME_IMAGE ? r->len > PDF_MAX_IMAGE
                                   : r->len > EXTRACT_MAX_TEXT - r->out->total_len)
            return sage_err_set(err, SAGE_ELIMIT, "pdf text exceeds %zu bytes", EXTRACT_MAX_TEXT);
        break;
    default:
        return bad_frame(err, "unknown type", r->type);
    }
    r->body = sage_malloc((size_t)r->len + 1);
    if (!r->body)
        return sage_err_set(err, SAGE_ENOMEM, "out of memory for %u bytes of pdf text", r->len);
    r->body_got = 0;
    return 0;
}

/* Acts on a complete frame. */
static int take_frame(struct run *r, struct sage_err *err)
{
    struct extracted *x = r->out;
    int rc = 0;
    r->body[r->len] = '\0';
    switch (r->type) {
    case FRAME_TITLE:
        r->titled = 1;
        rc = extracted_set_title(x, r->body, r->len, err);
        break;
    case FRAME_ERROR: {
        size_t k = 0;
        for (uint32_t i = 0; i < r->len; i++)
            r->bad_pdf[k++] = r->body[i] >= 0x20 && r->body[i] < 0x7f ? r->body[i] : '?';
        if (k == 0)
            r->bad_pdf[k++] = '?';
        r->bad_pdf[k] = '\0';
        break;
    }
    case FRAME_DONE:
        r->done = 1;
        break;
    case FRAME_PAGE: {
        size_t before = x->n_blocks;
        rc = extracted_add(x, r->body, r->len, NULL, r->page, err);
        x->n_pages++;
        if (rc == 0 && x->n_blocks == before)
            x->n_ocr_pages++;       /* no text, and none read from its image */
        break;
    }
    case FRAME_OCR:
    case FRAME_IMAGE:
    case FRAME_KNOWN: {
        struct ocr_request *q = sage_realloc(x->ocr, (x->n_ocr + 1) * sizeof(*q));
        if (!q) {
            rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for a page without text");
            break;
        }
        x->ocr = q;
        q = &x->ocr[x->n_ocr++];
        memset(q, 0, sizeof(*q));
        q->page = r->page;
        memcpy(q->hash, r->body, 16);
        size_t n = r->len - 16;
        if (r->type != FRAME_KNOWN) {
            memmove(r->body, r->body + 16, n + 1);  /* the body keeps its terminator */
            *(r->type == FRAME_OCR ? &q->text : (char **)&q->png) = r->body;
            *(r->type == FRAME_OCR ? &q->text_len : &q->png_len) = n;
            r->body = NULL;     /* the request owns it now */
        }
        x->n_pages++;
        break;
    }
    }
    sage_free(r->body);
    r->body = NULL;
    r->hdr_got = 0;
    return rc;
}

/* Reads what the frame pipe holds now (it is non-blocking). */
static int read_frames(struct run *r, struct sage_err *err)
{
    for (;;) {
        int in_hdr = r->hdr_got < FRAME_HDR;
        uint8_t *dst = in_hdr ? r->hdr + r->hdr_got : (uint8_t *)r->body + r->body_got;
        size_t want = in_hdr ? FRAME_HDR - r->hdr_got : r->len - r->body_got;
        ssize_t k = want ? read(r->ffd, dst, want) : 0;
        if (want && k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return sage_err_sys(err, SAGE_EIO, "cannot read from the pdf parser");
        }
        if (want && k == 0) {
            r->frames_eof = 1;
            return 0;
        }
        int rc = 0;
        if (in_hdr) {
            r->hdr_got += (size_t)k;
            if (r->hdr_got == FRAME_HDR)
                rc = check_header(r, err);
            in_hdr = r->hdr_got < FRAME_HDR;
        } else {
            r->body_got += (size_t)k;
        }
        if (rc == 0 && !in_hdr && r->body_got == r->len)
            rc = take_frame(r, err);
        if (rc < 0)
            return rc;
        if (r->done || r->bad_pdf[0])
            return 0;
    }
}

/* Keeps the first and the last bytes the child wrote to stderr: a sanitizer
 * or allocator names the failure first and may then dump pages of detail. */
static void read_stderr(struct run *r)
{
    char buf[4096];
    for (;;) {
        ssize_t k = read(r->efd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            r->stderr_eof = 1;
        if (k <= 0)
            return;
        size_t n = (size_t)k;
        if (r->errhead_len < STDERR_HEAD) {
            size_t h = STDERR_HEAD - r->errhead_len < n ? STDERR_HEAD - r->errhead_len : n;
            memcpy(r->errhead + r->errhead_len, buf, h);
            r->errhead_len += h;
        }
        if (n >= STDERR_KEEP) {
            memcpy(r->errtail, buf + n - STDERR_KEEP, STDERR_KEEP);
            r->errtail_len = STDERR_KEEP;
            continue;
        }
        if (r->errtail_len + n > STDERR_KEEP) {
            size_t drop = r->errtail_len + n - STDERR_KEEP;
            memmove(r->errtail, r->errtail + drop, r->errtail_len - drop);
            r->errtail_len -= drop;
        }
        memcpy(r->errtail + r->errtail_len, buf, n);
        r->errtail_len += n;
    }
}

/* 1 when the child has exited (status kept), 0 when it still runs. */
static int try_reap(struct run *r, int block)
{
    while (!r->reaped) {
        pid_t p = waitpid(r->pid, &r->status, block ? 0 : WNOHANG);
        if (p == r->pid) {
            r->reaped = 1;
        } else if (p == 0) {
            return 0;
        } else if (errno != EINTR) {
            r->reaped = 1;          /* ECHILD: SIGCHLD ignored, no status to have */
            r->status = -1;
        }
    }
    return 1;
}

static int says_oom(const char *s, size_t n)
{
    static const char *const words[] = { "out of memory", "bad_alloc", "failed to allocate",
                                         "cannot allocate", "memory exhausted", "unable to mmap" };
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        size_t k = strlen(words[w]);
        for (size_t i = 0; i + k <= n; i++) {
            size_t j = 0;
            while (j < k && (s[i + j] | 0x20) == (words[w][j] | 0x20))
                j++;
            if (j == k)
                return 1;
        }
    }
    return 0;
}

/* Whether the child, under a memory limit, said it ran out of memory. The
 * child's stderr carries only what its libraries print (poppler-glib keeps
 * the file's own complaints quiet), so this is a fair reading. */
static int stderr_says_oom(const struct run *r)
{
    return r->lim->max_memory &&
           (says_oom(r->errhead, r->errhead_len) || says_oom(r->errtail, r->errtail_len));
}

/* Reads frames until the end, an error or the deadline. 1 on timeout; 2 when
 * the child said it ran out of memory (it may hang dying: ASan's reporter can). */
static int pump(struct run *r, int64_t deadline, struct sage_err *err)
{
    while (!r->done && !r->bad_pdf[0] && !r->frames_eof) {
        if (stderr_says_oom(r))
            return 2;
        int64_t left = deadline - (int64_t)sage_now_ms();
        if (left <= 0)
            return 1;
        struct pollfd fds[2] = { { .fd = r->ffd, .events = POLLIN },
                                 { .fd = r->stderr_eof ? -1 : r->efd, .events = POLLIN } };
        int k = poll(fds, 2, (int)(left < POLL_TICK_MS ? left : POLL_TICK_MS));
        if (k < 0 && errno != EINTR)
            return sage_err_sys(err, SAGE_EIO, "cannot poll the pdf parser");
        if (k > 0 && fds[1].revents)
            read_stderr(r);
        if (k > 0 && fds[0].revents) {
            int rc = read_frames(r, err);
            if (rc < 0)
                return rc;
        } else if (k == 0 && try_reap(r, 0)) {
            /* Exited, but the pipe is still open: someone else forked a copy
             * of its write end. What the child wrote is in the pipe. */
            int rc = read_frames(r, err);
            if (rc < 0)
                return rc;
            break;
        }
    }
    return 0;
}

/* Waits for the child until the deadline; 0 when it has exited. A pidfd
 * wakes us the moment it exits (a child has sent its last frame just before
 * _exit, so this is a millisecond); without one, we look every 5 ms. */
static int reap_by(struct run *r, int64_t deadline)
{
    int pfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    while (!try_reap(r, 0)) {
        int64_t left = deadline - (int64_t)sage_now_ms();
        if (left <= 0) {
            if (pfd >= 0)
                close(pfd);
            return -1;
        }
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        poll(pfd >= 0 ? &p : NULL, pfd >= 0 ? 1 : 0, (int)(left < 5 ? left : 5));
    }
    if (pfd >= 0)
        close(pfd);
    return 0;
}

/* The error for a run that ended without FRAME_DONE. */
static int run_error(struct run *r, int timed_out, struct sage_err *err)
{
    int st = r->status;
    if (stderr_says_oom(r))
        return sage_err_set(err, SAGE_ELIMIT, "pdf parser exceeded the memory limit of %zu bytes",
                            r->lim->max_memory);
    if (timed_out)
        return sage_err_set(err, SAGE_ELIMIT, "timed out after %u ms", r->lim->timeout_ms);
    if (r->bad_pdf[0])
        return sage_err_set(err, SAGE_ECORRUPT, "not a valid PDF: %s", r->bad_pdf);
    if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)
        return sage_err_set(err, SAGE_ELIMIT, "pdf parser exceeded the cpu time limit of %u s",
                            r->lim->timeout_ms / 1000 + 1);
    if (st != -1 && WIFSIGNALED(st))
        return sage_err_set(err, SAGE_ECORRUPT, "pdf parser crashed (signal %d)", WTERMSIG(st));
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == CHILD_SETUP)
        return sage_err_set(err, SAGE_EIO, "pdf parser could not set up its limits");
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0)
        return sage_err_set(err, SAGE_ECORRUPT, "pdf parser failed (exit status %d)",
                            WEXITSTATUS(st));
    return sage_err_set(err, SAGE_ECORRUPT, "pdf parser stopped before the end");
}

int extract_pdf(const uint8_t *data, size_t len, const struct pdf_limits *lim,
                struct extracted *out, struct sage_err *err)
{
    struct run r = { .lim = lim, .out = out, .pid = -1, .ffd = -1, .efd = -1 };
    int fpipe[2] = { -1, -1 }, epipe[2] = { -1, -1 }, dfd = -1;
    int rc = 0, timed_out = 0;
    memset(out, 0, sizeof(*out));
    if ((!data && len) || !lim || lim->timeout_ms == 0 || lim->timeout_ms > INT32_MAX ||
        lim->max_pages == 0)
        return sage_err_set(err, SAGE_EINVAL, "extract_pdf: bad arguments or limits");
    int64_t deadline = (int64_t)sage_now_ms() + lim->timeout_ms;
    long page_size = sysconf(_SC_PAGESIZE);
    pid_t parent = getpid();
    if (lim->helper) {
        /* the document goes to the exec'd child in a sealed-size memfd */
        dfd = memfd_create("sage-pdf", MFD_CLOEXEC);
        size_t done = 0;
        while (dfd >= 0 && done < len) {
            ssize_t k = write(dfd, data + done, len - done);
            if (k <= 0)
                break;
            done += (size_t)k;
        }
        if (dfd < 0 || done < len) {
            rc = sage_err_sys(err, SAGE_EIO, "cannot hand the pdf to its parser");
            goto out;
        }
    }
    if (pipe2(fpipe, O_CLOEXEC) < 0 || pipe2(epipe, O_CLOEXEC) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot create a pipe for the pdf parser");
        goto out;
    }
    /* the helper's arguments, formatted before fork: the child of a threaded
     * process may only call async-signal-safe functions until it execs */
    char a_pages[16], a_ocr[16], a_dpi[16], a_known[4];
    snprintf(a_pages, sizeof(a_pages), "%u", lim->max_pages);
    snprintf(a_ocr, sizeof(a_ocr), "%d", lim->ocr);
    snprintf(a_dpi, sizeof(a_dpi), "%u", lim->ocr_dpi);
    snprintf(a_known, sizeof(a_known), "%d", lim->n_ocr_known && lim->ocr_known_fd >= 0);
    r.pid = fork();
    if (r.pid < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot fork the pdf parser");
        goto out;
    }
    if (r.pid == 0) {
        child_setup(fpipe[1], epipe[1], dfd, lim, parent, page_size);
        if (lim->helper) {
            char *const argv[] = { (char *)lim->helper, (char *)"__pdf-child", a_pages, a_ocr,
                                   a_dpi, a_known, NULL };
            execv(lim->helper, argv);
            _exit(CHILD_SETUP);
        }
        child_run(data, len, lim);
    }
    close(fpipe[1]);
    close(epipe[1]);
    fpipe[1] = epipe[1] = -1;
    r.ffd = fpipe[0];
    r.efd = epipe[0];
    if (fcntl(r.ffd, F_SETFL, O_NONBLOCK) < 0 || fcntl(r.efd, F_SETFL, O_NONBLOCK) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot set up the pdf parser's pipes");
        goto out;
    }
    rc = pump(&r, deadline, err);
    if (rc < 0)
        goto out;
    timed_out = rc == 1;
    if (rc == 2) {
        kill(r.pid, SIGKILL);
        try_reap(&r, 1);
    }
    rc = 0;
    if (!timed_out && reap_by(&r, deadline) < 0)
        timed_out = !r.done;      /* a child that sent everything may be killed */
    read_stderr(&r);
    if (!r.done)
        rc = run_error(&r, timed_out, err);
out:
    if (r.pid > 0 && !r.reaped) {
        kill(r.pid, SIGKILL);
        try_reap(&r, 1);
    }
    if (rc < 0)
        extracted_release(out);
    sage_free(r.body);
    if (dfd >= 0)
        close(dfd);
    for (int i = 0; i < 2; i++) {
        if (fpipe[i] >= 0)
            close(fpipe[i]);
        if (epipe[i] >= 0)
            close(epipe[i]);
    }
    return rc;
}
