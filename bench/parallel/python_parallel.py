"""joblib beside bench/parallel/crew_parallel.cpp: 100,000 trivial calls with the default options
(n_jobs=None: sequential) and with n_jobs=2 (loky); 1,000,000 through a ThreadPoolExecutor of 2
threads, and 10,000 through joblib's threading backend (about 280 us a call: joblib#1830); a new
Parallel for each call of 100, on loky's warm workers.
Calls of 5 ms: bench/cpu_bound.
Usage: python_parallel.py [REPEATS]"""
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

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
    thread_calls = 1_000_000
    with ThreadPoolExecutor(max_workers=2) as executor:
        list(executor.map(trivial, range(1000)))
        executor_times = [seconds(lambda: list(executor.map(trivial, range(thread_calls))))
                          for _ in range(repeats)]
    print(f"ThreadPoolExecutor(2).map {thread_calls} trivial calls "
          f"{thread_calls / statistics.median(executor_times):11.0f} calls/s")
    joblib_thread_calls = 10_000
    threading = Parallel(n_jobs=2, backend="threading")
    threading_times = [
        seconds(lambda: threading(delayed(trivial)(i) for i in range(joblib_thread_calls)))
        for _ in range(repeats)]
    print(f"joblib Parallel(n_jobs=2, threading) {joblib_thread_calls} trivial calls "
          f"{joblib_thread_calls / statistics.median(threading_times):11.0f} calls/s")
    # A new Parallel each time: loky's reusable executor keeps the workers warm between them.
    new_times = [seconds(lambda: Parallel(n_jobs=2)(delayed(trivial)(i) for i in range(100)))
                 for _ in range(repeats)]
    print(f"joblib new Parallel(n_jobs=2), 100 calls, warm workers "
          f"{statistics.median(new_times) * 1e3:10.3f} ms")


if __name__ == "__main__":
    main()
