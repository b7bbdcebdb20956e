// Invariant checks for the fuzz targets and the fault-injection program: a failed check prints where and why and
// aborts, which libFuzzer reports as a crash (with the input that caused it saved).
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define MVT_CHECK(cond, ...)                                                  \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      abort();                                                                \
    }                                                                         \
  } while (0)
