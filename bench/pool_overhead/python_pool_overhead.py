"""Per-task overhead of Python's pools: trivial int -> int tasks on 2 workers.

Usage: python3 python_pool_overhead.py [REPEATS]   (prints: measure value unit)
"""
import concurrent.futures
import multiprocessing
import statistics
import sys
import time


def increment(x):
    return x + 1


def median_rate(repeats, items, work):
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def round_trips(name, repeats, trip):
    """Each repeat: 2,000 round trips in a row; prints the medians of their p50 and p99."""
    p50s, p99s = [], []
    for _ in range(repeats):
        times = []
        for i in range(2_000):
            start = time.perf_counter()
            trip(i)
            times.append((time.perf_counter() - start) * 1e6)
        times.sort()
        p50s.append(times[len(times) // 2])
        p99s.append(times[len(times) * 99 // 100])
    print(f"python {name:<16} p50 {statistics.median(p50s):8.1f} us")
    print(f"python {name:<16} p99 {statistics.median(p99s):8.1f} us")


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    items = 100_000
    with multiprocessing.Pool(2) as pool, \
            concurrent.futures.ProcessPoolExecutor(max_workers=2) as executor:
        rate = median_rate(repeats, items, lambda: pool.map(increment, range(items), 1))
        print(f"python map-chunksize-1    {rate:12.0f} tasks/s")
        rate = median_rate(repeats, items, lambda: pool.map(increment, range(items)))
        print(f"python map-automatic      {rate:12.0f} items/s")
        few = items // 10  # submit is slow: a tenth of the items keeps the run short
        rate = median_rate(repeats, few, lambda: [f.result() for f in
                                                   [executor.submit(increment, i)
                                                    for i in range(few)]])
        print(f"python submit-and-result  {rate:12.0f} tasks/s")
        round_trips("apply", repeats, lambda i: pool.apply(increment, (i,)))
        round_trips("apply-async-get", repeats,
                    lambda i: pool.apply_async(increment, (i,)).get())
        round_trips("submit-result", repeats,
                    lambda i: executor.submit(increment, i).result())


if __name__ == "__main__":
    main()
