/* MCP over Streamable HTTP (mcp.h): initialize, ping, tools/list and
 * tools/call for the tools "search" and "get_document", each answered as one
 * JSON body. A tool's failure (no such document, a bad query) is a result
 * with isError set, as the protocol wants, so the agent reads why; protocol
 * mistakes are JSON-RPC errors. The tools run the API's own code paths
 * (api_search_json, api_document_json) with the API's checks. */
#include "mcp.h"

#include <civetweb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "layout.h"
#include "request.h"
#include "server.h"

#define MCP_MAX_K 50
#define MCP_DOC_MAX_TEXT ((size_t)256 << 10)    /* text of one get_document answer */

/* Protocol versions this server speaks, newest first. */
static const char *const versions[] = { "2025-06-18", "2025-03-26", "2024-11-05" };

static int fail(struct mcp_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct mcp_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

void mcp_msg_release(struct mcp_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

int mcp_parse(const char *body, size_t len, struct mcp_msg *m, struct mcp_error *e)
{
    json_error_t je;
    memset(m, 0, sizeof(*m));
    m->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!m->root)
        return fail(e, MCP_PARSE_ERROR, "not JSON: %s", je.text);
    if (json_is_array(m->root))
        return fail(e, MCP_INVALID_REQUEST, "batches are not supported: send one message");
    if (!json_is_object(m->root))
        return fail(e, MCP_INVALID_REQUEST, "a JSON-RPC message is an object");
    json_t *id = json_object_get(m->root, "id");
    if (id && (json_is_string(id) || json_is_integer(id)))
        m->id = id;
    const char *v = json_string_value(json_object_get(m->root, "jsonrpc"));
    if (!v || strcmp(v, "2.0") != 0)
        return fail(e, MCP_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
    if (id && !m->id)
        return fail(e, MCP_INVALID_REQUEST, "\"id\" must be a string or an integer");
    json_t *method = json_object_get(m->root, "method");
    if (!method) {
        /* a response to a request of ours: we send none, so it is ignored */
        if (!json_object_get(m->root, "result") && !json_object_get(m->root, "error"))
            return fail(e, MCP_INVALID_REQUEST, "neither a request nor a response");
        return 0;
    }
    if (!json_is_string(method))
        return fail(e, MCP_INVALID_REQUEST, "\"method\" must be a string");
    m->method = json_string_value(method);
    m->params = json_object_get(m->root, "params");
    if (m->params && !json_is_object(m->params))
        return fail(e, MCP_INVALID_PARAMS, "\"params\" must be an object");
    return 0;
}

json_t *mcp_search_args(const json_t *args, struct mcp_error *e)
{
    static const char *const known[] = { "query", "k", "library", "mode", "index" };
    const char *key;
    json_t *v;
    if (!json_is_object(args)) {
        fail(e, MCP_INVALID_PARAMS, "search: \"arguments\" must be an object");
        return NULL;
    }
    json_object_foreach((json_t *)args, key, v) {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(*known) && strcmp(key, known[i]) != 0)
            i++;
        if (i == sizeof(known) / sizeof(*known)) {
            fail(e, MCP_INVALID_PARAMS, "search: unknown argument \"%.60s\"", key);
            return NULL;
        }
    }
    json_t *q = json_object_get(args, "query"), *k = json_object_get(args, "k");
    if (!json_is_string(q) || !json_string_length(q)) {
        fail(e, MCP_INVALID_PARAMS, "search: \"query\" must be a non-empty string");
        return NULL;
    }
    if (k && (!json_is_integer(k) || json_integer_value(k) < 1 ||
              json_integer_value(k) > MCP_MAX_K)) {
        fail(e, MCP_INVALID_PARAMS, "search: \"k\" must be an integer from 1 to %d", MCP_MAX_K);
        return NULL;
    }
    static const char *const strs[] = { "library", "mode", "index" };
    for (size_t i = 0; i < 3; i++) {
        json_t *s = json_object_get(args, strs[i]);
        if (s && !json_is_string(s)) {
            fail(e, MCP_INVALID_PARAMS, "search: \"%s\" must be a string", strs[i]);
            return NULL;
        }
    }
    json_t *body = json_pack("{s:O, s:I, s:b}", "q", q, "k", k ? json_integer_value(k) : 8,
                             "snippets", 1);
    for (size_t i = 0; body && i < 3; i++) {
        json_t *s = json_object_get(args, strs[i]);
        if (s)
            json_object_set(body, strcmp(strs[i], "mode") == 0 ? "mode" : strs[i], s);
    }
    if (!body)
        fail(e, MCP_INTERNAL_ERROR, "out of memory");
    return body;
}

/* ---- text for the agent ---- */

struct text {
    char *s;
    size_t len, cap;
    int full;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    if (t->full)
        return;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = t->s ? vsnprintf(t->s + t->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t want = t->len + (n > 0 ? (size_t)n : 256) + 1;
        if (sage_grow((void **)&t->s, &t->cap, want, 1) < 0) {
            t->full = 1;
            return;
        }
    }
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static json_t *tool_result(struct text *t, int is_error)
{
    json_t *r = json_pack("{s:[{s:s, s:s%}], s:b}", "content", "type", "text", "text",
                          t->s ? t->s : "", t->len, "isError", is_error);
    sage_free(t->s);
    return r;
}

static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *tool_error(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct text t = { 0 };
    add(&t, "%s", msg);
    return tool_result(&t, 1);
}

static json_t *tool_search(struct app *app, const json_t *args, struct mcp_error *e)
{
    json_t *body = mcp_search_args(args, e);
    if (!body)
        return NULL;
    struct search_req rq;
    struct request_error re;
    struct request_limits lim = { app->cfg.max_query, app->cfg.max_k };
    struct api_answer a = { 0 };
    if (request_from_object(body, &lim, &rq, &re) < 0) {
        request_release(&rq);
        return tool_error("search refused: %s", re.message);
    }
    api_search_json(app, &rq, &a);
    request_release(&rq);
    if (a.status != 200)
        return tool_error("search failed (%s): %s", a.code, a.message);
    json_t *hits = json_object_get(a.body, "hits"), *h;
    json_t *deg = json_object_get(a.body, "degraded");
    size_t i;
    struct text t = { 0 };
    add(&t, "%zu result%s for \"%s\" (%s search, index %s, generation %lld)%s%s\n",
        json_array_size(hits), json_array_size(hits) == 1 ? "" : "s", str(a.body, "query"),
        str(a.body, "mode"), str(a.body, "index"),
        (long long)json_integer_value(json_object_get(a.body, "generation")),
        deg ? "; answered by BM25 alone: " : "", deg ? str(deg, "message") : "");
    json_array_foreach(hits, i, h) {
        const char *heading = str(h, "heading");
        json_int_t page = json_integer_value(json_object_get(h, "page"));
        add(&t, "\n%zu. %s:%s", i + 1, str(h, "library"), str(h, "path"));
        if (*heading)
            add(&t, " > %s", heading);
        if (page)
            add(&t, " (page %lld)", (long long)page);
        add(&t, "  [doc %lld, score %.4g]\n   %s\n",
            (long long)json_integer_value(json_object_get(h, "doc")),
            json_number_value(json_object_get(h, "score")), str(h, "snippet"));
    }
    if (json_array_size(hits))
        add(&t, "\nget_document with a doc number returns its whole text.\n");
    json_decref(a.body);
    return tool_result(&t, 0);
}

static json_t *tool_document(struct app *app, const json_t *args, struct mcp_error *e)
{
    json_t *id = json_object_get(args, "id"), *index = json_object_get(args, "index");
    if (!json_is_object(args) || !json_is_integer(id) || json_integer_value(id) < 0 ||
        (index && !json_is_string(index)) || json_object_size(args) > 1u + (index != NULL)) {
        fail(e, MCP_INVALID_PARAMS, "get_document: arguments are \"id\" (a document number "
                                    "from search) and optionally \"index\"");
        return NULL;
    }
    struct api_answer a = { 0 };
    api_document_json(app, json_string_value(index), json_integer_value(id), &a);
    if (a.status != 200)
        return tool_error("get_document failed (%s): %s", a.code, a.message);
    struct text t = { 0 };
    json_t *chunks = json_object_get(a.body, "chunks"), *c;
    size_t i;
    const char *last_heading = NULL;
    add(&t, "# %s\n%s:%s (doc %lld, index %s)\n", str(a.body, "title"), str(a.body, "library"),
        str(a.body, "path"), (long long)json_integer_value(id), str(a.body, "index"));
    json_array_foreach(chunks, i, c) {
        const char *heading = str(c, "heading");
        if (*heading && (!last_heading || strcmp(heading, last_heading) != 0))
            add(&t, "\n## %s\n", heading);
        last_heading = heading;
        add(&t, "\n%s\n", str(c, "text"));
        if (t.len > MCP_DOC_MAX_TEXT) {
            add(&t, "\n[cut at %zu bytes: the document goes on]\n", MCP_DOC_MAX_TEXT);
            break;
        }
    }
    json_t *r = tool_result(&t, 0);
    json_decref(a.body);
    return r;
}

static json_t *tools_list(void)
{
    return json_pack(
        "{s:[{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:i, s:i, s:s}, s:{s:s, s:s},"
        " s:{s:s, s:[s, s, s], s:s}, s:{s:s, s:s}}, s:[s], s:b}},"
        " {s:s, s:s, s:{s:s, s:{s:{s:s, s:i, s:s}, s:{s:s, s:s}}, s:[s], s:b}}]}",
        "tools",
        "name", "search",
        "description", "Search the documentation indexed by SAGE (BM25, dense or hybrid "
                       "ranking). Returns the best passages with their file path, heading and "
                       "a snippet, and a doc number for get_document.",
        "inputSchema", "type", "object", "properties",
            "query", "type", "string", "description", "words to look for; \"quoted phrases\", "
                     "+required, -excluded, library:NAME and path:PREFIX work too",
            "k", "type", "integer", "minimum", 1, "maximum", MCP_MAX_K,
                 "description", "how many results (default 8)",
            "library", "type", "string", "description", "only this library",
            "mode", "type", "string", "enum", "bm25", "dense", "hybrid",
                    "description", "ranking; default hybrid when the index has vectors",
            "index", "type", "string", "description", "which index, when the server has several",
        "required", "query", "additionalProperties", 0,
        "name", "get_document",
        "description", "The whole text of one document, by the doc number a search result gave.",
        "inputSchema", "type", "object", "properties",
            "id", "type", "integer", "minimum", 0, "description", "doc number from search",
            "index", "type", "string", "description", "which index, when the server has several",
        "required", "id", "additionalProperties", 0);
}

static json_t *initialize(const json_t *params)
{
    const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
    const char *v = versions[0];
    for (size_t i = 0; asked && i < sizeof(versions) / sizeof(*versions); i++)
        if (strcmp(asked, versions[i]) == 0)
            v = versions[i];
    return json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s}, s:s}", "protocolVersion", v,
                     "capabilities", "tools", "listChanged", 0,
                     "serverInfo", "name", "sage-searchd", "version", SAGE_VERSION,
                     "instructions", "Use search to find passages in the documentation, then "
                                     "get_document for a whole document.");
}

/* The result of request m, or NULL with *e set. */
static json_t *dispatch(struct app *app, const struct mcp_msg *m, struct mcp_error *e)
{
    if (strcmp(m->method, "initialize") == 0)
        return initialize(m->params);
    if (strcmp(m->method, "ping") == 0)
        return json_object();
    if (strcmp(m->method, "tools/list") == 0)
        return tools_list();
    if (strcmp(m->method, "tools/call") == 0) {
        const char *name = json_string_value(json_object_get(m->params, "name"));
        json_t *args = json_object_get(m->params, "arguments");
        if (!name) {
            fail(e, MCP_INVALID_PARAMS, "tools/call needs \"name\"");
            return NULL;
        }
        if (strcmp(name, "search") == 0)
            return tool_search(app, args, e);
        if (strcmp(name, "get_document") == 0)
            return tool_document(app, args, e);
        fail(e, MCP_INVALID_PARAMS, "unknown tool \"%.60s\" (tools: search, get_document)", name);
        return NULL;
    }
    fail(e, MCP_METHOD_NOT_FOUND, "no method \"%.60s\"", m->method);
    return NULL;
}

static int send_rpc(struct mg_connection *c, json_t *id, json_t *result, const struct mcp_error *e)
{
    json_t *r = result ? json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                                   "result", result)
                       : json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                                   id ? id : json_null(), "error", "code", e->code, "message",
                                   e->message);
    return send_json(c, 200, r);
}

int api_mcp(struct mg_connection *c, void *data)
{
    struct app *app = data;
    const char *method = mg_get_request_info(c)->request_method;
    if (!origin_allowed(c))
        return send_error(c, 403, "forbidden_origin", NULL, "this Origin may not use /mcp");
    if (strcmp(method, "POST") != 0)
        return send_error(c, 405, "method_not_allowed", "Allow: POST\r\n",
                          "POST JSON-RPC messages to /mcp (no event stream is offered)");
    char *body = NULL;
    size_t len = 0;
    int rc = read_body(c, app->cfg.max_body, &body, &len);
    if (rc == -SAGE_ELIMIT)
        return send_error(c, 413, "body_too_large", NULL, "the body is larger than %ld bytes",
                          app->cfg.max_body);
    if (rc < 0)
        return send_error(c, 400, "bad_request", NULL, "cannot read the body");
    struct mcp_msg m;
    struct mcp_error e = { 0 };
    int status;
    rc = mcp_parse(body, len, &m, &e);
    sage_free(body);
    if (rc < 0)
        status = send_rpc(c, m.id, NULL, &e);
    else if (!m.method || !m.id)
        status = send_empty(c, 202);    /* a notification or a response: accepted */
    else {
        json_t *result = dispatch(app, &m, &e);
        status = send_rpc(c, m.id, result, &e);
        json_decref(result);
    }
    mcp_msg_release(&m);
    return status;
}
