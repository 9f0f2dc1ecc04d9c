/* Client-side socket helpers shared by the load tools that talk to a
 * server on 127.0.0.1 (tests/lib/hammer.c, scripts/bench/net_bench.c):
 * connect with TCP_NODELAY and an optional I/O timeout, send everything,
 * and find a header in a response's header block. Header-only: each tool
 * is one file linked with libsage only. */
#ifndef SAGE_TESTS_LOOPBACK_H
#define SAGE_TESTS_LOOPBACK_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A connected socket to 127.0.0.1:port, or -1. timeout_s > 0: reads and
 * writes that wait longer fail, so a server that never answers is an
 * error, not a hang. */
static inline int lb_dial(int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { timeout_s, 0 };
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (timeout_s > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends p[0, len) whole; -1 when the connection fails. */
static inline int lb_send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += (size_t)k;
        len -= (size_t)k;
    }
    return 0;
}

/* The value of header name (leading blanks skipped) in the header block
 * [h, end), or NULL. */
static inline const char *lb_header(const char *h, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = h; l && l < end;) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        if ((size_t)(end - l) > n + 1 && strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            return v;
        }
        l = nl ? nl + 1 : NULL;
    }
    return NULL;
}

#endif
