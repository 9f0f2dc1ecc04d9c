/* Functions we do not call, each for a reason: unbounded copies (strcpy,
 * strcat, sprintf), hidden state (strtok), silent failure (atoi), and
 * shared static buffers (gmtime, localtime). Forced into every
 * translation unit with -include, so a use breaks the build. */
#ifndef SAGE_BANNED_H
#define SAGE_BANNED_H

/* The C library's own declarations come first, so their include guards keep
 * the macros below from mangling them later. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAGE_BANNED(func) sorry_##func##_is_banned_in_sage

#undef strcpy
#define strcpy(x, y) SAGE_BANNED(strcpy)
#undef strcat
#define strcat(x, y) SAGE_BANNED(strcat)
#undef sprintf
#define sprintf(...) SAGE_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) SAGE_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) SAGE_BANNED(strtok)
#undef atoi
#define atoi(x) SAGE_BANNED(atoi)
#undef gmtime
#define gmtime(x) SAGE_BANNED(gmtime)
#undef localtime
#define localtime(x) SAGE_BANNED(localtime)

#endif
