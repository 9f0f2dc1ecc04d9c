/* The search page (searchd/ui/: index.html, app.js, app.css), compiled into
 * sage-searchd by scripts/embed-assets.sh and served at / and /ui/. */
#ifndef SEARCHD_UI_H
#define SEARCHD_UI_H

#include <stddef.h>

struct ui_asset {
    const char *url;        /* "/" for the page, "/ui/NAME" for the rest */
    const char *type;       /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* Ends with an entry whose url is NULL. */
extern const struct ui_asset ui_assets[];

/* 1 when uri is the page or under /ui/ (its files): answered by api_ui,
 * without a key. */
int ui_is_page(const char *uri);

struct mg_connection;
/* The route for / and /ui/ (registered by server_start). */
int api_ui(struct mg_connection *c, void *app);

#endif
