"""joblib beside bench/shared_argument/crew_shared_argument.cpp: 1,000 calls, each summing its
slice of one 100 MiB array of float64 that every call is given whole, on 2 workers. loky is given
a numpy memmap of a file in a temporary folder (written once, as a crew::Array is), which it sends
by name and the workers map in place; its threading backend reads the caller's memory. joblib's
automatic memmapping of a plain array (max_nbytes='1M') is tried last: Debian's joblib 1.2.0
breaks on it here when calls follow one another (its temporary folder goes before a worker has
read it), which this script reports instead of a time.
Usage: python_shared_argument.py [REPEATS]"""
import os
import shutil
import statistics
import sys
import tempfile
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


def median_time(parallel, data, repeats):
    parallel(delayed(slice_sum)(data, i) for i in range(CALLS))  # starts the workers
    return statistics.median(
        seconds(lambda: parallel(delayed(slice_sum)(data, i) for i in range(CALLS)))
        for _ in range(repeats))


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    data = numpy.arange((100 << 20) // 8, dtype=numpy.float64)
    folder = tempfile.mkdtemp(prefix="crew-bench-")
    try:
        path = os.path.join(folder, "data.mmap")
        written = numpy.memmap(path, dtype=numpy.float64, mode="w+", shape=data.shape)
        written[:] = data
        written.flush()
        mapped = numpy.memmap(path, dtype=numpy.float64, mode="r", shape=data.shape)
        threads = median_time(Parallel(n_jobs=2, backend="threading"), data, repeats)
        print(f"joblib {'Parallel(threading) numpy array':40} {threads * 1e3:8.1f} ms  1.00x the "
              "threading backend's time")
        memmapped = median_time(Parallel(n_jobs=2), mapped, repeats)
        print(f"joblib {'Parallel(loky) numpy.memmap':40} {memmapped * 1e3:8.1f} ms  "
              f"{memmapped / threads:5.2f}x the threading backend's time")
        try:
            automatic = median_time(Parallel(n_jobs=2), data, repeats)
            print(f"joblib {'Parallel(loky) array, automatic memmap':40} {automatic * 1e3:8.1f} ms  "
                  f"{automatic / threads:5.2f}x the threading backend's time")
        except Exception as error:  # joblib's own failure, reported as measured
            print(f"joblib Parallel(loky) array, automatic memmap: failed: {type(error).__name__}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
