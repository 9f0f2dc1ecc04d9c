/* Fuzz target: the MCP endpoint's message parsing (searchd/mcp.c). A
 * message that parses must have the shape the dispatcher relies on, and the
 * search tool's argument check must accept only what the search API takes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "../../searchd/mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcp_msg m;
    struct mcp_error e;
    int rc = mcp_parse((const char *)data, size, &m, &e);
    if (rc == 0) {
        if (!json_is_object(m.root) || (m.params && !json_is_object(m.params)) ||
            (m.id && !json_is_string(m.id) && !json_is_integer(m.id)))
            abort();
        json_t *args = json_object_get(m.params, "arguments");
        struct mcp_error ae;
        json_t *body = mcp_search_args(args, &ae);
        if (body) {
            json_t *q = json_object_get(body, "q"), *k = json_object_get(body, "k");
            if (!json_is_string(q) || !json_string_length(q) || !json_is_integer(k) ||
                json_integer_value(k) < 1 || json_integer_value(k) > 50)
                abort();
            json_decref(body);
        } else if (ae.code != MCP_INVALID_PARAMS && ae.code != MCP_INTERNAL_ERROR) {
            abort();
        }
    } else if (e.code >= 0) {
        abort();
    }
    mcp_msg_release(&m);
    return 0;
}
