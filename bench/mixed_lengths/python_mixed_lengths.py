"""Makespan of 60 sleeps of 8, 40 and 120 ms in a fixed order on 2 workers, through Python's
ProcessPoolExecutor.submit, Pool.map(chunksize=1) and Pool.imap_unordered (chunksize 1).

Usage: python3 python_mixed_lengths.py [REPEATS]   (prints: measure value unit)
"""
import concurrent.futures
import multiprocessing
import statistics
import sys
import time


def sleep_ms(milliseconds):
    time.sleep(milliseconds / 1000)
    return milliseconds


def durations():
    """The same order as crew_mixed_lengths.cpp: 20 of each length, permuted by i -> 37 i mod 60."""
    lengths = [8, 40, 120]
    tasks = [0] * 60
    for i in range(60):
        tasks[(37 * i) % 60] = lengths[i % 3]
    return tasks


def greedy_makespan_ms(tasks, workers):
    free_at = [0.0] * workers
    for task in tasks:
        free_at[free_at.index(min(free_at))] += task
    return max(free_at)


def report(name, repeats, greedy, run):
    makespans = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        makespans.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(makespans)
    print(f"python {name:<16} {median:8.0f} ms  ({100 * (median / greedy - 1):.1f}% over greedy)")


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tasks = durations()
    greedy = greedy_makespan_ms(tasks, 2)
    with multiprocessing.Pool(2) as pool, \
            concurrent.futures.ProcessPoolExecutor(max_workers=2) as executor:
        pool.map(sleep_ms, [0, 0])
        executor.submit(sleep_ms, 0).result()
        report("submit", repeats, greedy,
               lambda: [f.result() for f in [executor.submit(sleep_ms, t) for t in tasks]])
        report("map-chunksize-1", repeats, greedy, lambda: pool.map(sleep_ms, tasks, 1))
        report("imap-unordered", repeats, greedy,
               lambda: list(pool.imap_unordered(sleep_ms, tasks, 1)))


if __name__ == "__main__":
    main()
