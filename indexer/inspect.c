/* sage-indexer info and verify: read-only looks at an index file. info opens
 * in O(1) and decodes the build record; verify reads every byte. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>

#include "cli.h"
#include "hnsw.h"
#include "log.h"
#include "mpjson.h"
#include "reader.h"
#include "stamp.h"

/* Build record of r as JSON (new reference), or NULL with err set. */
static json_t *build_record(const struct sage_reader *r, struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_BUILD);
    struct sage_bytes b;
    json_t *rec = NULL;
    if (!s) {
        sage_err_set(err, SAGE_ECORRUPT, "index has no build record");
        return NULL;
    }
    if (sage_reader_load(r, s, 16u << 20, &b, err) < 0)
        return NULL;
    sage_mpjson_decode(b.data, b.len, &rec, err);
    sage_bytes_release(&b);
    return rec;
}

static json_t *info_json(const char *path, const struct sage_reader *r, json_t *rec)
{
    const struct sage_reader_info *in = sage_reader_info(r);
    char hx[2][17];
    snprintf(hx[0], sizeof(hx[0]), "%016" PRIx64, in->file_checksum);
    snprintf(hx[1], sizeof(hx[1]), "%016" PRIx64, in->header_checksum);
    json_t *secs = json_array();
    for (uint32_t i = 0; i < in->n_sections; i++) {
        const struct sage_section *s = sage_reader_section(r, i);
        const char *kn = sage_section_kind_name(s->kind), *cn = sage_codec_name(s->codec);
        char ck[17];
        snprintf(ck, sizeof(ck), "%016" PRIx64, s->checksum);
        json_array_append_new(secs, json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:s}",
            "kind", (json_int_t)s->kind, "name", kn ? kn : "unknown", "codec", cn ? cn : "unknown",
            "offset", (json_int_t)s->off, "stored_bytes", (json_int_t)s->len,
            "decoded_bytes", (json_int_t)s->raw_len, "xxh3", ck));
    }
    json_t *j = json_pack("{s:s, s:{s:i, s:i}, s:I, s:{s:I, s:I}, s:{s:s, s:s}, s:o, s:O}",
        "file", path, "format", "major", in->major, "minor", in->minor,
        "size", (json_int_t)in->file_size,
        "counts", "documents", (json_int_t)in->n_docs, "chunks", (json_int_t)in->n_chunks,
        "checksums", "file_xxh3", hx[0], "header_xxh3", hx[1],
        "sections", secs, "build", rec);
    /* the graph's shape, from its header and upper table (no list is read) */
    struct sage_hnsw h;
    struct sage_err err = { 0 };
    int rc = sage_hnsw_open(&h, r, &err);
    if (j && rc == 0)
        json_object_set_new(j, "hnsw", json_pack("{s:I, s:i, s:i, s:i, s:i, s:i}",
            "nodes", (json_int_t)h.n, "m", (int)h.m, "m0", (int)h.m0,
            "ef_construction", (int)h.ef_construction, "levels", (int)h.max_level + 1,
            "upper_nodes", (int)h.n_upper));
    else if (j && rc != -SAGE_ENOTFOUND)
        json_object_set_new(j, "hnsw", json_pack("{s:s}", "error", err.msg));
    return j;
}

static void print_human(const json_t *j)
{
    json_t *sections = json_object_get(j, "sections");
    json_t *s;
    size_t i;
    printf("file:       %s\n", json_string_value(json_object_get(j, "file")));
    printf("format:     %" JSON_INTEGER_FORMAT ".%" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(json_object_get(j, "format"), "major")),
           json_integer_value(json_object_get(json_object_get(j, "format"), "minor")));
    printf("size:       %" JSON_INTEGER_FORMAT " bytes\n",
           json_integer_value(json_object_get(j, "size")));
    printf("documents:  %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(json_object_get(j, "counts"), "documents")));
    printf("chunks:     %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(json_object_get(j, "counts"), "chunks")));
    printf("checksum:   %s (xxh3, whole file)\n",
           json_string_value(json_object_get(json_object_get(j, "checksums"), "file_xxh3")));
    json_t *h = json_object_get(j, "hnsw");
    if (h && json_object_get(h, "error"))
        printf("hnsw:       unusable: %s\n", json_string_value(json_object_get(h, "error")));
    else if (h)
        printf("hnsw:       %" JSON_INTEGER_FORMAT " nodes on %" JSON_INTEGER_FORMAT " levels "
               "(%" JSON_INTEGER_FORMAT " above 0); m %" JSON_INTEGER_FORMAT ", %"
               JSON_INTEGER_FORMAT " on level 0; ef_construction %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(h, "nodes")),
               json_integer_value(json_object_get(h, "levels")),
               json_integer_value(json_object_get(h, "upper_nodes")),
               json_integer_value(json_object_get(h, "m")),
               json_integer_value(json_object_get(h, "m0")),
               json_integer_value(json_object_get(h, "ef_construction")));
    printf("sections:\n  %-3s %-10s %-5s %12s %14s %14s  %s\n", "#", "kind", "codec", "offset",
           "stored", "decoded", "xxh3");
    json_array_foreach(sections, i, s)
        printf("  %-3zu %-10s %-5s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT
               " %14" JSON_INTEGER_FORMAT "  %s\n", i,
               json_string_value(json_object_get(s, "name")),
               json_string_value(json_object_get(s, "codec")),
               json_integer_value(json_object_get(s, "offset")),
               json_integer_value(json_object_get(s, "stored_bytes")),
               json_integer_value(json_object_get(s, "decoded_bytes")),
               json_string_value(json_object_get(s, "xxh3")));
    char *rec = json_dumps(json_object_get(j, "build"), JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("build record:\n%s\n", rec ? rec : "(unprintable)");
    free(rec);
}

int cmd_info(struct cli *c)
{
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    json_t *rec = NULL, *j = NULL;
    int status = 1;
    if (c->n_args != 1) {
        fprintf(stderr, "usage: sage-indexer info [--json] FILE\n");
        return 2;
    }
    if (sage_reader_open(c->args[0], 0, &r, &err) < 0 || !(rec = build_record(r, &err))) {
        sage_log(SAGE_LOG_ERROR, "%s", err.msg);
        goto out;
    }
    j = info_json(c->args[0], r, rec);
    if (!j) {
        sage_log(SAGE_LOG_ERROR, "cannot describe '%s': out of memory", c->args[0]);
        goto out;
    }
    if (c->v[OPT_JSON].num) {
        char *s = json_dumps(j, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    } else {
        print_human(j);
    }
    status = 0;
out:
    json_decref(j);
    json_decref(rec);
    sage_reader_close(r);
    return status;
}

int cmd_verify(struct cli *c)
{
    int status = 0;
    if (c->n_args < 1) {
        fprintf(stderr, "usage: sage-indexer verify FILE...\n");
        return 2;
    }
    for (int i = 0; i < c->n_args; i++) {
        struct sage_err err = { 0 };
        struct sage_reader *r = NULL;
        struct sage_err serr = { 0 };
        if (sage_reader_open(c->args[i], SAGE_OPEN_TRANSIENT, &r, &err) < 0 ||
            sage_stamp_verify_reader(c->args[i], r, &err, c->v[OPT_STAMP].num ? &serr : NULL) < 0) {
            sage_log(SAGE_LOG_ERROR, "%s", err.msg);
            status = 1;
        } else if (serr.code) {
            sage_log(SAGE_LOG_ERROR, "%s", serr.msg);
            status = 1;
        } else {
            printf("%s: ok%s\n", c->args[i], c->v[OPT_STAMP].num ? ", stamped" : "");
        }
        sage_reader_close(r);
    }
    return status;
}
