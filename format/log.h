/* Logging for the programs (libsage functions themselves never log): one line
 * per message to stderr, plain text or one JSON object per line. Thread-safe:
 * each message is a single write. */
#ifndef SAGE_LOG_H
#define SAGE_LOG_H

enum sage_log_level { SAGE_LOG_DEBUG, SAGE_LOG_INFO, SAGE_LOG_WARN, SAGE_LOG_ERROR };

/* Process-wide settings, made once at start-up. prog prefixes plain lines. */
void sage_log_setup(const char *prog, enum sage_log_level min, int json);

void sage_log(enum sage_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
