/* The libFuzzer entry point, declared once for the fuzz targets and for
 * replay.c, which feeds the committed corpora through the same function under
 * gcc (our -Wmissing-prototypes build wants a prototype in scope). */
#ifndef SAGE_FUZZ_H
#define SAGE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input; always returns 0. A crash, sanitizer report or abort() is
 * the failure signal. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
