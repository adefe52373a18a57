/*
 * test_client.h: what the test clients (C and C++) share: the clock their
 * output lines carry, which is the clock the tests' own timestamps use,
 * and a seeded generator, so each client runs a fixed sequence.
 */
#ifndef FULVA_TEST_CLIENT_H
#define FULVA_TEST_CLIENT_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC, in nanoseconds. */
static inline int64_t
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* splitmix64 over `state` (seed it before the first call). */
static uint64_t state;
static inline uint64_t
next(void)
{
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif /* FULVA_TEST_CLIENT_H */
