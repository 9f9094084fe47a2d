# Seed 001's benchmark in Python, on this machine: multiprocessing.Pool(2).map(math.sqrt,
# range(10, N)) against a serial list comprehension. Usage: python3 python_sqrt.py [REPEATS]
import math
import statistics
import sys
import time
from multiprocessing import Pool


def timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with Pool(2) as pool:
        for n in (5_000_000, 100_000):
            serial = statistics.median(
                timed(lambda: [math.sqrt(x) for x in range(10, n)]) for _ in range(repeats))
            parallel = statistics.median(
                timed(lambda: pool.map(math.sqrt, range(10, n))) for _ in range(repeats))
            print(f"python sqrt N={n:<9} serial {serial:8.4f} s  Pool(2).map {parallel:8.4f} s"
                  f"  = {parallel / serial:.2f}x serial")
