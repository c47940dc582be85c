/*
 * What every unit test shares: the count of failed checks and CHECK, which
 * prints where and why a check failed and leaves the test function.
 */
#ifndef STASIS_UNIT_H
#define STASIS_UNIT_H

#include <stdio.h>

static int failed;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			printf("  FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__);                          \
			printf("\n");                                 \
			failed++;                                     \
			return;                                       \
		}                                                     \
	} while (0)

#endif
