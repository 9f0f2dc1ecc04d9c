/* Log lines to stderr; JSON lines are encoded by jansson so any message text
 * is escaped correctly. */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "sage";
static enum sage_log_level log_min = SAGE_LOG_INFO;
static int log_json;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void sage_log_setup(const char *prog, enum sage_log_level min, int json)
{
    log_prog = prog;
    log_min = min;
    log_json = json;
}

void sage_log(enum sage_log_level level, const char *fmt, ...)
{
    char msg[2048], line[16384];   /* room for msg escaped at 6x */
    int n;
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_json) {
        struct timespec ts;
        struct tm tm;
        char when[40];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?}", "time", when, "level",
                              level_names[level], "prog", log_prog, "msg", msg);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        n = snprintf(line, sizeof(line), "%s\n", s ? s : "{\"msg\":\"log encoding failed\"}");
        free(s);
        json_decref(o);
    } else {
        n = snprintf(line, sizeof(line), "%s: %s%s\n", log_prog,
                     level >= SAGE_LOG_WARN ? (level == SAGE_LOG_ERROR ? "error: " : "warning: ")
                                            : "", msg);
    }
    if (n > 0) {
        size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        if (write(STDERR_FILENO, line, len) < 0)
            return;
    }
}
