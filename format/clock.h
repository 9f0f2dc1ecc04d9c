/* The one monotonic clock every timing in SAGE reads (deadlines, took_ms,
 * rates, progress), in milliseconds as a double. */
#ifndef SAGE_CLOCK_H
#define SAGE_CLOCK_H

#include <time.h>

static inline double sage_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
