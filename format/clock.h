/* The one monotonic clock every timing in SAGE reads (deadlines, took_ms,
 * rates, progress), in milliseconds as a double, and the thread CPU clock. */
#ifndef SAGE_CLOCK_H
#define SAGE_CLOCK_H

#include <time.h>

static inline double sage_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The calling thread's CPU time in milliseconds: unlike the wall clock, it
 * leaves out the time other threads and processes take the core away. */
static inline double sage_thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
