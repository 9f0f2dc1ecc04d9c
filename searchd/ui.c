/* Serves the search page (ui.h). The page's script talks to the JSON API;
 * a strict Content-Security-Policy allows only this server's own script,
 * styles and API, so even a bug that let index text become markup could
 * not run a script. The page itself needs no key (the API calls do). */
#include "ui.h"

#include <civetweb.h>
#include <string.h>

#include "server.h"

#define UI_HEADERS                                                                           \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "     \
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "              \
    "frame-ancestors 'none'\r\n"                                                             \
    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"

/* The asset uri names; /index.html is the page too. NULL: none. */
static const struct ui_asset *find(const char *uri)
{
    if (uri && strcmp(uri, "/index.html") == 0)
        uri = "/";
    for (const struct ui_asset *a = ui_assets; uri && a->url; a++)
        if (strcmp(uri, a->url) == 0)
            return a;
    return NULL;
}

int ui_is_page(const char *uri)
{
    return find(uri) || (uri && strncmp(uri, "/ui/", 4) == 0);
}

int api_ui(struct mg_connection *c, void *app)
{
    (void)app;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const struct ui_asset *a = find(ri->local_uri);
    if (a && strcmp(ri->request_method, "GET") != 0 && strcmp(ri->request_method, "HEAD") != 0)
        return send_error(c, 405, "method_not_allowed", "Allow: GET\r\n", "use GET");
    return a ? send_static(c, a->type, a->data, a->len, UI_HEADERS)
             : send_error(c, 404, "not_found", NULL, "no such page");
}
