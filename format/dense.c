/* Exact dense search (dense.h): the reference version, f32 over every row.
 * (Being replaced by the int8 scan with f32 rescoring.) */
#include "dense.h"

#include "kernels.h"

static int better(const struct sage_dense_hit *a, const struct sage_dense_hit *b)
{
    return a->score > b->score || (a->score == b->score && a->chunk < b->chunk);
}

int sage_dense_exact(const struct sage_vectors *v, const float *q,
                     const struct sage_dense_opts *o, struct sage_dense_hit *hits,
                     size_t *n_hits, struct sage_err *err)
{
    (void)err;
    size_t n = 0;
    for (uint64_t c = 0; c < v->n && o->k; c++) {
        if (o->allow && !(o->allow[c / 64] >> (c % 64) & 1))
            continue;
        struct sage_dense_hit h = { c, sage_dot_f32(q, sage_vectors_row(v, c), v->dim) };
        if (n == o->k && !better(&h, &hits[n - 1]))
            continue;
        size_t i = n < o->k ? n++ : n - 1;
        while (i > 0 && better(&h, &hits[i - 1])) {
            hits[i] = hits[i - 1];
            i--;
        }
        hits[i] = h;
    }
    *n_hits = n;
    return 0;
}
