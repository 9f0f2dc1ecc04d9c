/* Record table builder and checked view. */
#include "rectab.h"

#include <string.h>

#include "alloc.h"
#include "le.h"

void sage_rectab_builder_init(struct sage_rectab_builder *b, size_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    b->max_bytes = max_bytes ? max_bytes : (size_t)1 << 30;
}

void sage_rectab_builder_release(struct sage_rectab_builder *b)
{
    if (!b)
        return;
    sage_free(b->offs);
    sage_free(b->data);
    memset(b, 0, sizeof(*b));
}

int sage_rectab_builder_add(struct sage_rectab_builder *b, const void *rec, size_t len,
                            struct sage_err *err)
{
    if (len > b->max_bytes - b->data_len)
        return sage_err_set(err, SAGE_ELIMIT, "record table exceeds %zu bytes", b->max_bytes);
    if (sage_grow((void **)&b->offs, &b->offs_cap, b->n + 2, sizeof(*b->offs)) < 0 ||
        sage_grow((void **)&b->data, &b->data_cap, b->data_len + len, 1) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot grow record table");
    if (len)
        memcpy(b->data + b->data_len, rec, len);
    b->offs[b->n] = b->data_len;
    b->data_len += len;
    b->n++;
    b->offs[b->n] = b->data_len;
    return 0;
}

size_t sage_rectab_builder_size(const struct sage_rectab_builder *b)
{
    return 8 + 8 * (b->n + 1) + b->data_len;
}

void sage_rectab_builder_encode(const struct sage_rectab_builder *b, uint8_t *out)
{
    sage_put64(out, b->n);
    for (size_t i = 0; i <= b->n; i++)
        sage_put64(out + 8 + 8 * i, b->n ? b->offs[i] : 0);
    if (b->data_len)
        memcpy(out + 8 + 8 * (b->n + 1), b->data, b->data_len);
}

int sage_rectab_open(struct sage_rectab *t, const uint8_t *buf, size_t len, struct sage_err *err)
{
    memset(t, 0, sizeof(*t));
    if (len < 16)
        return sage_err_set(err, SAGE_ECORRUPT, "record table too short");
    uint64_t n = sage_le64(buf);
    if (n > (len - 16) / 8)
        return sage_err_set(err, SAGE_ECORRUPT, "record table count %llu exceeds its section",
                            (unsigned long long)n);
    size_t head = 8 + 8 * ((size_t)n + 1);
    t->n = n;
    t->offs = buf + 8;
    t->data = buf + head;
    t->data_len = len - head;
    if (sage_le64(t->offs) != 0 || sage_le64(t->offs + 8 * n) > t->data_len)
        return sage_err_set(err, SAGE_ECORRUPT, "record table offsets out of range");
    return 0;
}

int sage_rectab_get(const struct sage_rectab *t, uint64_t i, const uint8_t **rec, size_t *len,
                    struct sage_err *err)
{
    if (i >= t->n)
        return sage_err_set(err, SAGE_ENOTFOUND, "record %llu of %llu", (unsigned long long)i,
                            (unsigned long long)t->n);
    uint64_t a = sage_le64(t->offs + 8 * i), b = sage_le64(t->offs + 8 * (i + 1));
    if (a > b || b > t->data_len)
        return sage_err_set(err, SAGE_ECORRUPT, "record %llu has bad offsets",
                            (unsigned long long)i);
    *rec = t->data + a;
    *len = (size_t)(b - a);
    return 0;
}
