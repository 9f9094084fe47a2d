/* The floor for a round trip between two processes on this machine: a counter in shared memory
 * bounced 10,000 times, both sides spinning, then both sides sleeping on a futex between turns.
 * Usage: bare_ping_pong   (prints p50 and p99 in microseconds for each way of waiting) */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 10000 };

static void futex_wait(_Atomic uint32_t* word, uint32_t expected) {
    syscall(SYS_futex, (uint32_t*)word, FUTEX_WAIT, expected, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t* word) {
    syscall(SYS_futex, (uint32_t*)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Waits until *word == value, spinning or sleeping. */
static void wait_for(_Atomic uint32_t* word, uint32_t value, int sleeping) {
    uint32_t seen;
    while ((seen = atomic_load(word)) != value) {
        if (sleeping)
            futex_wait(word, seen);
        else
            __builtin_ia32_pause();
    }
}
static void set(_Atomic uint32_t* word, uint32_t value, int sleeping) {
    atomic_store(word, value);
    if (sleeping) futex_wake(word);
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(void) {
    _Atomic uint32_t* words =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (words == MAP_FAILED) return 1;
    static double samples[ROUNDS];
    for (int sleeping = 0; sleeping < 2; ++sleeping) {
        _Atomic uint32_t* ping = &words[0];
        _Atomic uint32_t* pong = &words[16];
        atomic_store(ping, 0);
        atomic_store(pong, 0);
        pid_t child = fork();
        if (child == 0) {
            for (uint32_t i = 1; i <= ROUNDS; ++i) {
                wait_for(ping, i, sleeping);
                set(pong, i, sleeping);
            }
            _exit(0);
        }
        for (uint32_t i = 1; i <= ROUNDS; ++i) {
            double start = now_us();
            set(ping, i, sleeping);
            wait_for(pong, i, sleeping);
            samples[i - 1] = now_us() - start;
        }
        waitpid(child, NULL, 0);
        qsort(samples, ROUNDS, sizeof samples[0], by_value);
        printf("bare ping-pong %-8s p50 %6.1f us  p99 %6.1f us\n",
               sleeping ? "sleeping" : "spinning", samples[ROUNDS / 2], samples[ROUNDS * 99 / 100]);
    }
    return 0;
}
