/* HNSW (hnsw.h, FORMAT.md §9.13). The builder inserts rows in id order,
 * one at a time or from several threads: every node's lists have a one-byte
 * spin lock, held only to copy a list out or to rewrite it, never two at a
 * time; the entry point has a mutex of its own. Search reads the section in
 * place and trusts none of its neighbour ids. */
#include "hnsw.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "kernels.h"
#include "le.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the HNSW section is read in place: a little-endian host is required"
#endif

#define HHEAD 64u
#define ALIGN 64u
#define NONE UINT32_MAX

static uint64_t round_up(uint64_t x)
{
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

/* ---- candidates and heaps ---- */

struct cand {
    float s;        /* similarity to the query: larger is better */
    uint32_t id;
};

static int better(struct cand a, struct cand b)
{
    return a.s > b.s || (a.s == b.s && a.id < b.id);
}

/* A binary heap; worst_top: the worst element on top (the result set),
 * else the best (the candidates still to expand). */
static void heap_push(struct cand *h, size_t *n, struct cand c, int worst_top)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!(worst_top ? better(h[p], c) : better(c, h[p])))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static struct cand heap_pop(struct cand *h, size_t *n, int worst_top)
{
    struct cand top = h[0], last = h[--*n];
    size_t i = 0;
    if (*n == 0)
        return top;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && (worst_top ? better(h[c], h[c + 1]) : better(h[c + 1], h[c])))
            c++;
        if (!(worst_top ? better(last, h[c]) : better(h[c], last)))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static int cmp_cand(const void *a, const void *b)
{
    struct cand x = *(const struct cand *)a, y = *(const struct cand *)b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

/* ---- the graph being built ---- */

struct sage_hnsw_graph {
    uint32_t m, m0, ef_construction, max_level, entry, n_upper;
    uint64_t n, n_links;
    uint32_t *l0;           /* n lists of 1 + m0 words: count, ids */
    uint8_t *level;         /* of each node */
    uint32_t *up_idx;       /* node -> index in up_node, NONE below level 1 */
    uint32_t *up_node, *up_start, *up_links;   /* as in the section */
};

void sage_hnsw_graph_free(struct sage_hnsw_graph *g)
{
    if (!g)
        return;
    sage_free(g->l0);
    sage_free(g->level);
    sage_free(g->up_idx);
    sage_free(g->up_node);
    sage_free(g->up_start);
    sage_free(g->up_links);
    sage_free(g);
}

static uint32_t *list_of(const struct sage_hnsw_graph *g, uint32_t node, uint32_t level)
{
    if (level == 0)
        return g->l0 + (size_t)node * (1 + g->m0);
    return g->up_links + g->up_start[g->up_idx[node]] + (size_t)(level - 1) * (1 + g->m);
}

struct builder {
    struct sage_hnsw_graph *g;
    const float *rows;
    size_t stride;
    uint32_t dim;
    int threaded;
    uint8_t *locks;             /* one spin lock per node */
    pthread_mutex_t top;        /* g->entry and g->max_level while threads run */
    uint64_t next;              /* atomic: the next node to insert */
    int rc;                     /* atomic: the first failure */
};

/* What one inserting thread owns. */
struct worker {
    struct builder *b;
    uint32_t *stamp, gen;       /* visited marks: stamp[i] == gen */
    struct cand *cand, *res, *sel;  /* sel: the new node's neighbours */
    struct cand *tmp, *pruned;      /* add_link's */
    size_t cap_cand;
    uint32_t *nb;               /* a copied list */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void lock_node(struct builder *b, uint32_t i)
{
    if (!b->threaded)
        return;
    while (__atomic_exchange_n(&b->locks[i], 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&b->locks[i], __ATOMIC_RELAXED))
            cpu_relax();
}

static void unlock_node(struct builder *b, uint32_t i)
{
    if (b->threaded)
        __atomic_store_n(&b->locks[i], 0, __ATOMIC_RELEASE);
}

static const float *row(const struct builder *b, uint32_t i)
{
    return b->rows + (size_t)i * b->stride;
}

static float sim(const struct builder *b, uint32_t x, uint32_t y)
{
    return sage_dot_f32(row(b, x), row(b, y), b->dim);
}

/* Copies node's list at level into w->nb; its length. */
static uint32_t copy_list(struct worker *w, uint32_t node, uint32_t level)
{
    struct builder *b = w->b;
    lock_node(b, node);
    const uint32_t *l = list_of(b->g, node, level);
    uint32_t cnt = l[0];
    memcpy(w->nb, l + 1, (size_t)cnt * sizeof(*l));
    unlock_node(b, node);
    return cnt;
}

/* The ef nodes nearest x found from ep at level, best first, in w->res;
 * their number, or -1 out of memory. */
static long search_layer(struct worker *w, uint32_t x, uint32_t ep, uint32_t level, size_t ef)
{
    struct builder *b = w->b;
    size_t nc = 0, nr = 0;
    if (++w->gen == 0) {
        memset(w->stamp, 0, b->g->n * sizeof(*w->stamp));
        w->gen = 1;
    }
    struct cand c0 = { sim(b, x, ep), ep };
    w->stamp[ep] = w->gen;
    heap_push(w->cand, &nc, c0, 0);
    heap_push(w->res, &nr, c0, 1);
    while (nc > 0) {
        struct cand c = heap_pop(w->cand, &nc, 0);
        if (nr >= ef && better(w->res[0], c))
            break;
        uint32_t cnt = copy_list(w, c.id, level), fresh = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t id = w->nb[j];
            if (w->stamp[id] == w->gen)
                continue;
            w->stamp[id] = w->gen;
            w->nb[fresh++] = id;
            __builtin_prefetch(row(b, id));
            __builtin_prefetch(row(b, id) + 16);
        }
        for (uint32_t j = 0; j < fresh; j++) {
            uint32_t id = w->nb[j];
            struct cand e = { sim(b, x, id), id };
            if (nr < ef || better(e, w->res[0])) {
                if (nc == w->cap_cand &&
                    sage_grow((void **)&w->cand, &w->cap_cand, nc + 1, sizeof(*w->cand)) < 0)
                    return -1;
                heap_push(w->cand, &nc, e, 0);
                heap_push(w->res, &nr, e, 1);
                if (nr > ef)
                    heap_pop(w->res, &nr, 1);
            }
        }
    }
    qsort(w->res, nr, sizeof(*w->res), cmp_cand);
    return (long)nr;
}

/* The neighbour-selection heuristic: from c[0, nc) (best first) keeps, in
 * order, those nearer the base than to any already kept, at most max, into
 * out; their number. */
static uint32_t select_nb(const struct builder *b, const struct cand *c, size_t nc,
                          uint32_t max, struct cand *out)
{
    uint32_t k = 0;
    for (size_t i = 0; i < nc && k < max; i++) {
        int keep = 1;
        for (uint32_t j = 0; j < k && keep; j++)
            keep = sim(b, c[i].id, out[j].id) <= c[i].s;
        if (keep)
            out[k++] = c[i];
    }
    return k;
}

/* Adds x to e's list at level, pruning it with the heuristic when full. */
static void add_link(struct worker *w, uint32_t e, uint32_t x, uint32_t level)
{
    struct builder *b = w->b;
    uint32_t max = level ? b->g->m : b->g->m0;
    lock_node(b, e);
    uint32_t *l = list_of(b->g, e, level);
    if (l[0] < max) {
        l[1 + l[0]] = x;
        l[0]++;
    } else {
        size_t nc = 0;
        w->tmp[nc++] = (struct cand){ sim(b, e, x), x };
        for (uint32_t j = 0; j < l[0]; j++)
            w->tmp[nc++] = (struct cand){ sim(b, e, l[1 + j]), l[1 + j] };
        qsort(w->tmp, nc, sizeof(*w->tmp), cmp_cand);
        uint32_t k = select_nb(b, w->tmp, nc, max, w->pruned);
        for (uint32_t j = 0; j < max; j++)
            l[1 + j] = j < k ? w->pruned[j].id : 0;
        l[0] = k;
    }
    unlock_node(b, e);
}

static int insert(struct worker *w, uint32_t x)
{
    struct builder *b = w->b;
    struct sage_hnsw_graph *g = b->g;
    uint32_t lx = g->level[x];
    if (b->threaded)
        pthread_mutex_lock(&b->top);
    uint32_t ep = g->entry, top = g->max_level;
    if (b->threaded)
        pthread_mutex_unlock(&b->top);
    float es = sim(b, x, ep);
    for (uint32_t l = top; l > lx; l--) {
        for (int changed = 1; changed;) {
            changed = 0;
            uint32_t cnt = copy_list(w, ep, l);
            for (uint32_t j = 0; j < cnt; j++) {
                float s = sim(b, x, w->nb[j]);
                if (s > es || (s == es && w->nb[j] < ep)) {
                    es = s;
                    ep = w->nb[j];
                    changed = 1;
                }
            }
        }
    }
    for (uint32_t l = lx < top ? lx : top;; l--) {
        long nr = search_layer(w, x, ep, l, g->ef_construction);
        if (nr < 0)
            return -SAGE_ENOMEM;
        uint32_t k = select_nb(b, w->res, (size_t)nr, g->m, w->sel);
        lock_node(b, x);
        uint32_t *lst = list_of(g, x, l);
        for (uint32_t j = 0; j < k; j++)
            lst[1 + j] = w->sel[j].id;
        lst[0] = k;
        unlock_node(b, x);
        for (uint32_t j = 0; j < k; j++)
            add_link(w, w->sel[j].id, x, l);
        ep = w->res[0].id;
        if (l == 0)
            break;
    }
    if (lx > top) {
        if (b->threaded)
            pthread_mutex_lock(&b->top);
        if (lx > g->max_level) {
            g->max_level = lx;
            g->entry = x;
        }
        if (b->threaded)
            pthread_mutex_unlock(&b->top);
    }
    return 0;
}

static void worker_release(struct worker *w)
{
    sage_free(w->stamp);
    sage_free(w->cand);
    sage_free(w->res);
    sage_free(w->sel);
    sage_free(w->tmp);
    sage_free(w->pruned);
    sage_free(w->nb);
}

static int worker_init(struct worker *w, struct builder *b)
{
    const struct sage_hnsw_graph *g = b->g;
    size_t ef = g->ef_construction;
    memset(w, 0, sizeof(*w));
    w->b = b;
    w->cap_cand = 2 * ef + g->m0;
    w->stamp = sage_calloc(g->n, sizeof(*w->stamp));
    w->cand = sage_calloc(w->cap_cand, sizeof(*w->cand));
    w->res = sage_calloc(ef + 1, sizeof(*w->res));
    w->sel = sage_calloc(g->m0 + 1, sizeof(*w->sel));
    w->tmp = sage_calloc(g->m0 + 1, sizeof(*w->tmp));
    w->pruned = sage_calloc(g->m0 + 1, sizeof(*w->pruned));
    w->nb = sage_calloc(g->m0 + 1, sizeof(*w->nb));
    if (!w->stamp || !w->cand || !w->res || !w->sel || !w->tmp || !w->pruned || !w->nb) {
        worker_release(w);
        return -SAGE_ENOMEM;
    }
    return 0;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct builder *b = w->b;
    for (;;) {
        if (__atomic_load_n(&b->rc, __ATOMIC_RELAXED) < 0)
            break;
        uint64_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED);
        if (i >= b->g->n)
            break;
        int rc = insert(w, (uint32_t)i);
        if (rc < 0) {
            int zero = 0;
            __atomic_compare_exchange_n(&b->rc, &zero, rc, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

/* The levels of the nodes (a hash of seed and id, so they do not depend on
 * the order of insertion) and the upper-level table that fits them. */
static int plan_levels(struct sage_hnsw_graph *g, uint64_t seed, struct sage_err *err)
{
    double ml = 1.0 / log((double)g->m);
    uint64_t words = 0;
    for (uint64_t i = 0; i < g->n; i++) {
        uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        double u = ((double)(z >> 11) + 1.0) / 9007199254740992.0;    /* (0, 1] */
        double l = floor(-log(u) * ml);
        g->level[i] = (uint8_t)(l < SAGE_HNSW_LEVEL_MAX ? l : SAGE_HNSW_LEVEL_MAX);
        if (g->level[i]) {
            g->n_upper++;
            words += (uint64_t)g->level[i] * (1 + g->m);
        }
    }
    if (words >= UINT32_MAX)
        return sage_err_set(err, SAGE_ELIMIT, "hnsw graph too large: %llu upper-level words",
                            (unsigned long long)words);
    g->n_links = words;
    g->up_node = sage_calloc(g->n_upper ? g->n_upper : 1, sizeof(*g->up_node));
    g->up_start = sage_calloc((size_t)g->n_upper + 1, sizeof(*g->up_start));
    g->up_links = sage_calloc(words ? words : 1, sizeof(*g->up_links));
    if (!g->up_node || !g->up_start || !g->up_links)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the hnsw graph");
    uint32_t k = 0;
    for (uint64_t i = 0; i < g->n; i++) {
        g->up_idx[i] = NONE;
        if (!g->level[i])
            continue;
        g->up_idx[i] = k;
        g->up_node[k] = (uint32_t)i;
        g->up_start[k + 1] = g->up_start[k] + g->level[i] * (1 + g->m);
        k++;
    }
    return 0;
}

int sage_hnsw_build(const struct sage_hnsw_params *p, uint64_t n, uint32_t dim,
                    const float *rows, size_t stride, struct sage_hnsw_graph **out,
                    struct sage_err *err)
{
    struct sage_hnsw_params d = { 0, 0, 0, 0 };
    struct builder b;
    struct worker *ws = NULL;
    pthread_t *tids = NULL;
    unsigned threads, started = 0;
    int rc = 0, top_init = 0;
    if (!p)
        p = &d;
    *out = NULL;
    memset(&b, 0, sizeof(b));
    uint32_t m = p->m ? p->m : SAGE_HNSW_M;
    uint32_t efc = p->ef_construction ? p->ef_construction : SAGE_HNSW_EF_CONSTRUCTION;
    if (m < 2 || m > SAGE_HNSW_M_MAX || efc > SAGE_HNSW_EF_MAX || n >= UINT32_MAX ||
        dim == 0 || stride < dim)
        return sage_err_set(err, SAGE_EINVAL, "cannot build an hnsw graph with m %u, "
                            "ef_construction %u over %llu rows", m, efc, (unsigned long long)n);
    struct sage_hnsw_graph *g = sage_calloc(1, sizeof(*g));
    if (!g)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the hnsw graph");
    g->m = m;
    g->m0 = 2 * m;
    g->ef_construction = efc;
    g->n = n;
    g->l0 = sage_calloc(n ? n : 1, sizeof(*g->l0) * (1 + g->m0));
    g->level = sage_calloc(n ? n : 1, 1);
    g->up_idx = sage_calloc(n ? n : 1, sizeof(*g->up_idx));
    if (!g->l0 || !g->level || !g->up_idx) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the hnsw graph");
        goto out;
    }
    if ((rc = plan_levels(g, p->seed ? p->seed : SAGE_HNSW_SEED, err)) < 0 || n == 0)
        goto out;
    threads = p->threads;
    if (threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (unsigned)c : 1;
    }
    if (threads > 256)
        threads = 256;
    if ((uint64_t)threads > n / 64 + 1)
        threads = (unsigned)(n / 64 + 1);   /* small graphs: not worth a thread */
    b.g = g;
    b.rows = rows;
    b.stride = stride;
    b.dim = dim;
    b.threaded = threads > 1;
    g->entry = 0;
    g->max_level = g->level[0];
    b.next = 1;
    ws = sage_calloc(threads, sizeof(*ws));
    tids = sage_calloc(threads, sizeof(*tids));
    if (!ws || !tids || (b.threaded && !(b.locks = sage_calloc(n, 1)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the hnsw builder");
        goto out;
    }
    for (unsigned t = 0; t < threads; t++)
        if (worker_init(&ws[t], &b) < 0) {
            for (unsigned u = 0; u < t; u++)
                worker_release(&ws[u]);
            sage_free(ws);
            ws = NULL;
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the hnsw builder");
            goto out;
        }
    if (b.threaded) {
        if (pthread_mutex_init(&b.top, NULL) != 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot start the hnsw builder");
            goto release;
        }
        top_init = 1;
        for (started = 1; started < threads; started++)
            if (pthread_create(&tids[started], NULL, work, &ws[started]) != 0)
                break;
    }
    work(&ws[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(tids[t], NULL);
    if (b.rc < 0)
        rc = sage_err_set(err, -b.rc, "cannot build the hnsw graph: %s", sage_err_text(b.rc));
release:
    for (unsigned t = 0; t < threads; t++)
        worker_release(&ws[t]);
out:
    if (top_init)
        pthread_mutex_destroy(&b.top);
    sage_free(ws);
    sage_free(tids);
    sage_free(b.locks);
    if (rc < 0)
        sage_hnsw_graph_free(g);
    else
        *out = g;
    return rc;
}

int sage_hnsw_write(struct sage_writer *w, const struct sage_hnsw_graph *g,
                    struct sage_err *err)
{
    size_t stride0 = (size_t)round_up(4 * (1 + (uint64_t)g->m0));
    uint8_t *buf = sage_calloc(1, stride0 > HHEAD ? stride0 : HHEAD);
    int rc;
    if (!buf)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the hnsw writer");
    sage_put32(buf, g->m);
    sage_put32(buf + 4, g->m0);
    sage_put32(buf + 8, g->ef_construction);
    sage_put32(buf + 12, g->max_level);
    sage_put64(buf + 16, g->n);
    sage_put32(buf + 24, g->entry);
    sage_put32(buf + 28, g->n_upper);
    sage_put64(buf + 32, HHEAD);
    sage_put64(buf + 40, HHEAD + g->n * stride0);
    sage_put64(buf + 48, g->n_links);
    if ((rc = sage_writer_begin(w, SAGE_SECTION_HNSW, SAGE_CODEC_RAW, err)) < 0)
        goto out;
    if ((rc = sage_writer_write(w, buf, HHEAD, err)) < 0)
        goto end;
    memset(buf, 0, stride0);
    for (uint64_t i = 0; i < g->n; i++) {
        memcpy(buf, g->l0 + i * (1 + g->m0), 4 * (size_t)(1 + g->m0));
        if ((rc = sage_writer_write(w, buf, stride0, err)) < 0)
            goto end;
    }
    if ((rc = sage_writer_write(w, g->up_node, 4 * (size_t)g->n_upper, err)) < 0 ||
        (rc = sage_writer_write(w, g->up_start, 4 * ((size_t)g->n_upper + 1), err)) < 0 ||
        (rc = sage_writer_write(w, g->up_links, 4 * (size_t)g->n_links, err)) < 0)
        goto end;
end:
    {
        int rc2 = sage_writer_end(w, err);
        rc = rc < 0 ? rc : rc2;
    }
out:
    sage_free(buf);
    return rc;
}

/* ---- the graph in the file ---- */

int sage_hnsw_open(struct sage_hnsw *h, const struct sage_reader *r, struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_HNSW);
    memset(h, 0, sizeof(*h));
    if (!s)
        return sage_err_set(err, SAGE_ENOTFOUND, "index has no hnsw graph");
    if (s->codec != SAGE_CODEC_RAW || s->len < HHEAD)
        return sage_err_set(err, SAGE_ECORRUPT, "hnsw section is malformed");
    const uint8_t *p = s->data;
    h->m = sage_le32(p);
    h->m0 = sage_le32(p + 4);
    h->ef_construction = sage_le32(p + 8);
    h->max_level = sage_le32(p + 12);
    h->n = sage_le64(p + 16);
    h->entry = sage_le32(p + 24);
    h->n_upper = sage_le32(p + 28);
    h->n_links = sage_le64(p + 48);
    if (h->m < 2 || h->m > SAGE_HNSW_M_MAX || h->m0 < h->m || h->m0 > 2 * SAGE_HNSW_M_MAX ||
        h->ef_construction == 0 || h->ef_construction > SAGE_HNSW_EF_MAX ||
        h->max_level > SAGE_HNSW_LEVEL_MAX || h->n >= UINT32_MAX || h->n_upper > h->n ||
        (h->n ? h->entry >= h->n : h->entry != 0) || (h->max_level == 0) != (h->n_upper == 0) ||
        h->n_links >= UINT32_MAX || sage_le64(p + 56) != 0)
        return sage_err_set(err, SAGE_ECORRUPT, "hnsw section header is inconsistent");
    h->stride0 = (size_t)round_up(4 * (1 + (uint64_t)h->m0));
    uint64_t off_up = HHEAD + h->n * h->stride0;
    if (sage_le64(p + 32) != HHEAD || sage_le64(p + 40) != off_up ||
        s->len != off_up + 4 * (2 * (uint64_t)h->n_upper + 1 + h->n_links))
        return sage_err_set(err, SAGE_ECORRUPT, "hnsw section header does not describe it");
    if (h->n != sage_reader_info(r)->n_chunks)
        return sage_err_set(err, SAGE_ECORRUPT, "hnsw graph of %llu nodes for %llu chunks",
                            (unsigned long long)h->n,
                            (unsigned long long)sage_reader_info(r)->n_chunks);
    h->level0 = p + HHEAD;
    h->up_node = (const uint32_t *)(const void *)(p + off_up);
    h->up_start = h->up_node + h->n_upper;
    h->up_links = h->up_start + h->n_upper + 1;
    int entry_ok = h->max_level == 0;
    if (h->up_start[0] != 0 || h->up_start[h->n_upper] != h->n_links)
        return sage_err_set(err, SAGE_ECORRUPT, "hnsw upper levels are malformed");
    for (uint32_t i = 0; i < h->n_upper; i++) {
        uint32_t a = h->up_start[i], z = h->up_start[i + 1];
        if ((i && h->up_node[i] <= h->up_node[i - 1]) || h->up_node[i] >= h->n || z <= a ||
            (z - a) % (h->m + 1) || (z - a) / (h->m + 1) > h->max_level)
            return sage_err_set(err, SAGE_ECORRUPT, "hnsw upper level of node %u is malformed",
                                i);
        if (h->up_node[i] == h->entry)
            entry_ok = (z - a) / (h->m + 1) == h->max_level;
    }
    if (!entry_ok)
        return sage_err_set(err, SAGE_ECORRUPT, "hnsw entry point is not on the top level");
    return 0;
}

/* node's list at level >= 1 (count, then m ids), or NULL when the node
 * has no such level. */
static const uint32_t *upper_list(const struct sage_hnsw *h, uint32_t node, uint32_t level)
{
    size_t lo = 0, hi = h->n_upper;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->up_node[mid] < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == h->n_upper || h->up_node[lo] != node)
        return NULL;
    uint32_t a = h->up_start[lo], z = h->up_start[lo + 1];
    if (level > (z - a) / (h->m + 1))
        return NULL;
    return h->up_links + a + (size_t)(level - 1) * (h->m + 1);
}

/* Visited nodes of one search: open addressing on id + 1, kept at most
 * half full. */
struct visited {
    uint32_t *slot;
    size_t bits, used;
};

static int visited_init(struct visited *v, size_t want)
{
    v->bits = 12;
    while (v->bits < 30 && ((size_t)1 << v->bits) < 2 * want)
        v->bits++;
    v->used = 0;
    v->slot = sage_calloc((size_t)1 << v->bits, sizeof(*v->slot));
    return v->slot ? 0 : -1;
}

static size_t vhash(uint32_t key, size_t bits)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

/* 1 when id was not there (and now is), 0 when it was, -1 out of memory. */
static int visit(struct visited *v, uint32_t id)
{
    uint32_t key = id + 1;
    size_t mask = ((size_t)1 << v->bits) - 1, i = vhash(key, v->bits);
    while (v->slot[i]) {
        if (v->slot[i] == key)
            return 0;
        i = (i + 1) & mask;
    }
    v->slot[i] = key;
    if (++v->used * 2 > mask + 1) {
        size_t cap = mask + 1;
        uint32_t *old = v->slot;
        v->slot = sage_calloc(2 * cap, sizeof(*v->slot));
        if (!v->slot) {
            v->slot = old;
            return -1;
        }
        v->bits++;
        for (size_t j = 0; j < cap; j++) {
            if (!old[j])
                continue;
            size_t t = vhash(old[j], v->bits);
            while (v->slot[t])
                t = (t + 1) & (2 * cap - 1);
            v->slot[t] = old[j];
        }
        sage_free(old);
    }
    return 1;
}

struct query {
    const struct sage_vectors *v;
    const int8_t *q;
    size_t len;         /* bytes of the int8 rows compared */
    float qs;
};

/* Scores from the file may be NaN (a hostile scale or row): those rank
 * last, so that comparisons stay a total order for the heaps and qsort. */
static float finite_or_worst(float s)
{
    return s == s ? s : -INFINITY;
}

static float score_i8(const struct query *qq, uint32_t id)
{
    return finite_or_worst((float)sage_dot_i8(qq->q, sage_vectors_row_i8(qq->v, id), qq->len) *
                           qq->qs * sage_vectors_scale(qq->v, id));
}

static int allowed(const uint64_t *allow, uint32_t id)
{
    return !allow || (allow[id / 64] >> (id % 64) & 1);
}

int sage_hnsw_search(const struct sage_hnsw *h, const struct sage_vectors *v, const float *q,
                     size_t ef, size_t k, const uint64_t *allow, struct sage_dense_hit *hits,
                     size_t *n_hits, struct sage_err *err)
{
    struct query qq = { v, NULL, v->stride_i8, 0 };
    struct visited vis = { NULL, 0, 0 };
    struct cand *cand = NULL, *res = NULL;
    size_t nc = 0, nr = 0, cap_cand;
    int8_t *qi8 = NULL;
    uint32_t ids[2 * SAGE_HNSW_M_MAX];
    int rc = 0;
    *n_hits = 0;
    if (h->n != v->n)
        return sage_err_set(err, SAGE_EINVAL, "hnsw graph of %llu nodes for %llu vectors",
                            (unsigned long long)h->n, (unsigned long long)v->n);
    if (h->n == 0 || k == 0)
        return 0;
    if (ef < k)
        ef = k;
    if (ef > SAGE_HNSW_EF_MAX)
        ef = SAGE_HNSW_EF_MAX;
    cap_cand = 2 * ef + h->m0;
    qi8 = sage_calloc(1, v->stride_i8);
    cand = sage_calloc(cap_cand, sizeof(*cand));
    res = sage_calloc(ef + 1, sizeof(*res));
    if (!qi8 || !cand || !res || visited_init(&vis, ef * h->m0 / 2) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate an hnsw search");
        goto out;
    }
    qq.q = qi8;
    qq.qs = sage_vectors_quantize(q, v->dim, qi8);

    /* greedy descent on the upper levels */
    uint32_t cur = h->entry;
    float cs = score_i8(&qq, cur);
    for (uint32_t l = h->max_level; l >= 1; l--) {
        for (int changed = 1; changed;) {
            changed = 0;
            const uint32_t *lst = upper_list(h, cur, l);
            if (!lst)
                break;
            uint32_t cnt = lst[0] < h->m ? lst[0] : h->m;
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t id = lst[1 + j];
                if (id >= h->n)
                    continue;
                float s = score_i8(&qq, id);
                if (s > cs || (s == cs && id < cur)) {
                    cs = s;
                    cur = id;
                    changed = 1;
                }
            }
        }
    }

    /* best-first search of level 0 */
    struct cand c0 = { cs, cur };
    if (visit(&vis, cur) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate an hnsw search");
        goto out;
    }
    heap_push(cand, &nc, c0, 0);
    if (allowed(allow, cur))
        heap_push(res, &nr, c0, 1);
    while (nc > 0) {
        struct cand c = heap_pop(cand, &nc, 0);
        if (nr >= ef && better(res[0], c))
            break;
        const uint32_t *lst = (const uint32_t *)(const void *)(h->level0 + c.id * h->stride0);
        uint32_t cnt = lst[0] < h->m0 ? lst[0] : h->m0, fresh = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t id = lst[1 + j];
            if (id >= h->n)
                continue;
            int nv = visit(&vis, id);
            if (nv < 0) {
                rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate an hnsw search");
                goto out;
            }
            if (nv) {
                ids[fresh++] = id;
                __builtin_prefetch(sage_vectors_row_i8(v, id));
            }
        }
        for (uint32_t j = 0; j < fresh; j++) {
            struct cand e = { score_i8(&qq, ids[j]), ids[j] };
            if (nr < ef || better(e, res[0])) {
                if (nc == cap_cand &&
                    sage_grow((void **)&cand, &cap_cand, nc + 1, sizeof(*cand)) < 0) {
                    rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate an hnsw search");
                    goto out;
                }
                heap_push(cand, &nc, e, 0);
                if (allowed(allow, e.id)) {
                    heap_push(res, &nr, e, 1);
                    if (nr > ef)
                        heap_pop(res, &nr, 1);
                }
            }
        }
    }

    /* rescoring with the f32 rows */
    for (size_t i = 0; i < nr; i++)
        res[i].s = finite_or_worst(sage_dot_f32(q, sage_vectors_row(v, res[i].id), v->dim));
    qsort(res, nr, sizeof(*res), cmp_cand);
    for (size_t i = 0; i < nr && i < k; i++)
        hits[i] = (struct sage_dense_hit){ res[i].id, res[i].s };
    *n_hits = nr < k ? nr : k;
out:
    sage_free(qi8);
    sage_free(cand);
    sage_free(res);
    sage_free(vis.slot);
    return rc;
}
