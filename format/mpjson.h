/* msgpack <-> JSON values (jansson), for the build record and document
 * records. Encoding is deterministic: object keys are written sorted.
 * Decoding trusts nothing: a pre-scan checks every length and element count
 * against the bytes that remain before msgpack-c allocates for them. */
#ifndef SAGE_MPJSON_H
#define SAGE_MPJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Encodes v (objects, arrays, strings, integers, reals, booleans, null) into
 * a new buffer *out of *len bytes, owned by the caller (sage_free). */
int sage_mpjson_encode(const json_t *v, uint8_t **out, size_t *len, struct sage_err *err);

/* Decodes exactly one msgpack object spanning buf[0, len) into *out (a new
 * reference). Map keys must be strings without NUL bytes; bin and ext types are refused. */
int sage_mpjson_decode(const uint8_t *buf, size_t len, json_t **out, struct sage_err *err);

#endif
