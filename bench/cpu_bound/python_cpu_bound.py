"""CPU-bound tasks: 400 tasks of about 5 ms each, serially, on multiprocessing.Pool(2) and, when
joblib is there, through joblib.Parallel(n_jobs=2).

Usage: python3 python_cpu_bound.py [REPEATS]
"""
import multiprocessing
import statistics
import sys
import time


def work(rounds):
    x = rounds
    for _ in range(rounds):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    return x


def seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tasks = 400
    rounds = 10_000
    rounds = int(0.005 / (seconds(lambda: work(rounds)) / rounds))
    inputs = [rounds] * tasks
    serial, parallel = [], []
    with multiprocessing.Pool(2) as pool:
        for _ in range(repeats):
            serial.append(seconds(lambda: [work(t) for t in inputs]))
            parallel.append(seconds(lambda: pool.map(work, inputs)))
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"python serial        {s:8.3f} s")
    print(f"python Pool(2)       {p:8.3f} s  speedup {s / p:.3f}")
    try:
        from joblib import Parallel, delayed
    except ImportError:
        print("joblib not found (apt-get install python3-joblib): its figures are absent")
        return
    with Parallel(n_jobs=2) as joblib_parallel:
        joblib_parallel(delayed(work)(1) for _ in range(4))  # starts the workers
        times = [seconds(lambda: joblib_parallel(delayed(work)(t) for t in inputs))
                 for _ in range(repeats)]
    j = statistics.median(times)
    print(f"joblib Parallel(2)   {j:8.3f} s  speedup {s / j:.3f}")


if __name__ == "__main__":
    main()
