"""joblib beside bench/shared_argument/crew_shared_argument.cpp: 1,000 calls, each summing its
slice of one 100 MiB numpy array that every call is given whole, on 2 workers. joblib's loky
backend dumps the array to a memmapped file once a call (max_nbytes='1M', its default) and the
workers read it in place; its threading backend reads the caller's memory.
Usage: python_shared_argument.py [REPEATS]"""
import statistics
import sys
import time

import numpy
from joblib import Parallel, delayed

CALLS = 1000


def slice_sum(data, index):
    length = len(data) // CALLS
    return float(data[index * length:(index + 1) * length].sum())


def seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    data = numpy.arange((100 << 20) // 8, dtype=numpy.float64)
    threads = Parallel(n_jobs=2, backend="threading")
    processes = Parallel(n_jobs=2)
    processes(delayed(slice_sum)(data, i) for i in range(CALLS))  # starts the workers
    thread_times, process_times = [], []
    for _ in range(repeats):
        thread_times.append(seconds(lambda: threads(delayed(slice_sum)(data, i) for i in range(CALLS))))
        process_times.append(
            seconds(lambda: processes(delayed(slice_sum)(data, i) for i in range(CALLS))))
    thread_median = statistics.median(thread_times)
    for what, times in (("Parallel(threading) numpy array", thread_times),
                        ("Parallel(loky) numpy array, memmapped", process_times)):
        median = statistics.median(times)
        print(f"joblib {what:40} {median * 1e3:8.1f} ms  {median / thread_median:5.2f}x the "
              "threading backend's time")


if __name__ == "__main__":
    main()
