"""joblib beside bench/parallel/crew_parallel.cpp: 100,000 trivial calls with the default options
(n_jobs=None: sequential) and with n_jobs=2 (loky). Calls of 5 ms: bench/cpu_bound.
Usage: python_parallel.py [REPEATS]"""
import statistics
import sys
import time

from joblib import Parallel, delayed


def trivial(x):
    return x + 1


def seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    calls = 100_000
    by_default = Parallel()
    two = Parallel(n_jobs=2)
    two(delayed(trivial)(i) for i in range(1000))  # starts the workers
    default_times = [seconds(lambda: by_default(delayed(trivial)(i) for i in range(calls)))
                     for _ in range(repeats)]
    two_times = [seconds(lambda: two(delayed(trivial)(i) for i in range(calls)))
                 for _ in range(repeats)]
    print(f"joblib Parallel() {calls} trivial calls        "
          f"{calls / statistics.median(default_times):12.0f} calls/s")
    print(f"joblib Parallel(n_jobs=2) {calls} trivial calls "
          f"{calls / statistics.median(two_times):11.0f} calls/s")


if __name__ == "__main__":
    main()
