/* msgpack <-> jansson conversion through msgpack-c. The pre-scan exists
 * because msgpack-c sizes its allocation from the element count it reads, so
 * a five-byte input could ask for gigabytes; we refuse counts that the
 * remaining bytes cannot hold before it sees them. */
#include "mpjson.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- encoding ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int pack(msgpack_packer *pk, const json_t *v, int depth)
{
    if (depth > 32)
        return -1;
    switch (json_typeof(v)) {
    case JSON_NULL: return msgpack_pack_nil(pk);
    case JSON_TRUE: return msgpack_pack_true(pk);
    case JSON_FALSE: return msgpack_pack_false(pk);
    case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL: return msgpack_pack_double(pk, json_real_value(v));
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (msgpack_pack_str(pk, n) < 0)
            return -1;
        return msgpack_pack_str_body(pk, json_string_value(v), n);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (msgpack_pack_array(pk, n) < 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (pack(pk, json_array_get(v, i), depth + 1) < 0)
                return -1;
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0, kn;
        const char **keys = sage_calloc(n ? n : 1, sizeof(*keys));
        const char *k;
        json_t *val;
        int rc = -1;
        if (!keys)
            return -1;
        json_object_keylen_foreach((json_t *)v, k, kn, val) {
            if (strlen(k) != kn)
                goto out;   /* a NUL inside a key: keys are C strings below */
            keys[i++] = k;
        }
        qsort(keys, n, sizeof(*keys), cmp_str);   /* deterministic bytes */
        if (msgpack_pack_map(pk, n) < 0)
            goto out;
        for (i = 0; i < n; i++) {
            size_t kl = strlen(keys[i]);
            if (msgpack_pack_str(pk, kl) < 0 || msgpack_pack_str_body(pk, keys[i], kl) < 0 ||
                pack(pk, json_object_get(v, keys[i]), depth + 1) < 0)
                goto out;
        }
        rc = 0;
    out:
        sage_free(keys);
        return rc;
    }
    }
    return -1;
}

int sage_mpjson_encode(const json_t *v, uint8_t **out, size_t *len, struct sage_err *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    *out = NULL;
    *len = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = pack(&pk, v, 0);
    if (rc == 0) {
        *out = sage_malloc(sb.size);
        if (*out) {
            memcpy(*out, sb.data, sb.size);
            *len = sb.size;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc < 0)
        return sage_err_set(err, SAGE_EINVAL, "value cannot be encoded as msgpack");
    if (!*out)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate msgpack buffer");
    return 0;
}

/* ---- decoding ---- */

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Walks one object without allocating: every length must fit in what remains
 * and every container count must not exceed the bytes left (each element
 * takes at least one). Returns 0 when buf holds exactly one object. */
static int prescan(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint64_t pending = 1;
    while (pending > 0) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        uint64_t skip = 0, children = 0;
        int lenbytes = 0;
        pending--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else if (b >= 0x80 && b <= 0x8f)
            children = 2u * (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f)
            children = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else if (b >= 0xca && b <= 0xd3) {
            static const uint8_t sz[] = { 4, 8, 1, 2, 4, 8, 1, 2, 4, 8 };
            skip = sz[b - 0xca];
        } else if (b >= 0xd9 && b <= 0xdb) {
            lenbytes = 1 << (b - 0xd9);
            if ((size_t)(end - p) < (size_t)lenbytes)
                return -1;
            skip = be(p, lenbytes);
            p += lenbytes;
        } else if (b == 0xdc || b == 0xdd || b == 0xde || b == 0xdf) {
            lenbytes = (b == 0xdc || b == 0xde) ? 2 : 4;
            if ((size_t)(end - p) < (size_t)lenbytes)
                return -1;
            children = be(p, lenbytes) * (b >= 0xde ? 2 : 1);
            p += lenbytes;
        } else {
            return -1;  /* 0xc1, bin and ext: not part of our records */
        }
        if (skip > (uint64_t)(end - p))
            return -1;
        p += skip;
        pending += children;
        if (pending > (uint64_t)(end - p))
            return -1;
    }
    return p == end ? 0 : -1;
}

/* msgpack-c leaves ptr NULL for a zero-length fixstr; jansson wants a pointer. */
static const char *str_ptr(const msgpack_object_str *s)
{
    return s->size ? s->ptr : "";
}

static json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > INT64_MAX ? NULL : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);  /* NULL if not finite */
    case MSGPACK_OBJECT_STR: return json_stringn(str_ptr(&o->via.str), o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *e = to_json(&o->via.array.ptr[i]);
            if (!e || json_array_append_new(a, e) < 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            const msgpack_object_str *key = &kv->key.via.str;
            /* Keys are names: a NUL inside one could not be encoded again. */
            int key_ok = kv->key.type == MSGPACK_OBJECT_STR &&
                         (key->size == 0 || !memchr(key->ptr, 0, key->size));
            json_t *val = key_ok ? to_json(&kv->val) : NULL;
            if (!val || json_object_setn_new(m, str_ptr(key), key->size, val) < 0) {
                json_decref(m);
                m = NULL;
            }
        }
        return m;
    }
    default:
        return NULL;
    }
}

int sage_mpjson_decode(const uint8_t *buf, size_t len, json_t **out, struct sage_err *err)
{
    msgpack_unpacked u;
    size_t off = 0;
    *out = NULL;
    if (prescan(buf, len) < 0)
        return sage_err_set(err, SAGE_ECORRUPT, "malformed msgpack record");
    msgpack_unpacked_init(&u);
    msgpack_unpack_return ur = msgpack_unpack_next(&u, (const char *)buf, len, &off);
    if (ur == MSGPACK_UNPACK_SUCCESS && off == len)
        *out = to_json(&u.data);
    msgpack_unpacked_destroy(&u);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return sage_err_set(err, SAGE_ENOMEM, "cannot decode msgpack record");
    if (!*out)
        return sage_err_set(err, SAGE_ECORRUPT, "msgpack record has unsupported content");
    return 0;
}
