/* The MCP endpoint (Model Context Protocol, Streamable HTTP transport):
 * JSON-RPC 2.0 messages POSTed to /mcp, answered with one JSON body, so LLM
 * agents can search with the tools "search" and "get_document". Stateless:
 * no session id, no server-sent event stream (GET /mcp is 405). Auth and
 * limits are the API's. */
#ifndef SEARCHD_MCP_H
#define SEARCHD_MCP_H

#include <jansson.h>
#include <stddef.h>

/* JSON-RPC 2.0 error codes */
#define MCP_PARSE_ERROR (-32700)
#define MCP_INVALID_REQUEST (-32600)
#define MCP_METHOD_NOT_FOUND (-32601)
#define MCP_INVALID_PARAMS (-32602)
#define MCP_INTERNAL_ERROR (-32603)

/* One message from the client. */
struct mcp_msg {
    json_t *root;           /* owns everything below */
    json_t *id;             /* string or integer; NULL for a notification */
    const char *method;     /* NULL for a response from the client */
    json_t *params;         /* object, or NULL */
};

struct mcp_error {
    int code;
    char message[200];
};

/* Parses body[0, len) as one JSON-RPC 2.0 message (batches are refused).
 * 0, or -1 with *e set (and m->id set when the id could be read, so the
 * error can be answered). Pure: the fuzz target calls it. Release m in
 * every case. */
int mcp_parse(const char *body, size_t len, struct mcp_msg *m, struct mcp_error *e);
void mcp_msg_release(struct mcp_msg *m);

/* A tool call's arguments as the search API's JSON body ({"q", "k",
 * "library", "mode", "index"}), or NULL with *e set (INVALID_PARAMS). */
json_t *mcp_search_args(const json_t *args, struct mcp_error *e);

struct mg_connection;
/* The /mcp route (registered by server_start). */
int api_mcp(struct mg_connection *c, void *app);

#endif
