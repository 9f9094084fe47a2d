/* The floor: fork() a child that exits at once, and waitpid() for it.
 * Usage: bare_fork_start [ROUNDS]   (prints: bare-fork median_us p90_us) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int compare(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    double* samples = malloc(sizeof(double) * (size_t)rounds);
    if (samples == NULL) return 1;
    for (int i = 0; i < rounds + 10; ++i) {
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) _exit(0);
        int status;
        if (waitpid(pid, &status, 0) != pid) return 1;
        clock_gettime(CLOCK_MONOTONIC, &end);
        double micros =
            (double)(end.tv_sec - start.tv_sec) * 1e6 + (double)(end.tv_nsec - start.tv_nsec) / 1e3;
        if (i >= 10) samples[i - 10] = micros;
    }
    qsort(samples, (size_t)rounds, sizeof(double), compare);
    printf("bare-fork       %10.1f %10.1f\n", samples[rounds / 2], samples[rounds * 9 / 10]);
    free(samples);
    return 0;
}
