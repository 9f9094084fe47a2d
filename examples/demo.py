# The Python twin of demo.cpp, run by it: seed 001's square roots of range(10, N) with
# multiprocessing.Pool(processes).map against a serial list comprehension, medians of 5 runs.
# Usage: python3 demo.py N PROCESSES; prints "serial SECONDS pool SECONDS".
import math
import statistics
import sys
import time
from multiprocessing import Pool


def median_seconds(work):
    times = []
    for _ in range(5):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    n, processes = int(sys.argv[1]), int(sys.argv[2])
    with Pool(processes) as pool:
        serial = median_seconds(lambda: [math.sqrt(x) for x in range(10, n)])
        parallel = median_seconds(lambda: pool.map(math.sqrt, range(10, n)))
    print(f"serial {serial:.6f} pool {parallel:.6f}")
