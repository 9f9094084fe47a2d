"""joblib beside bench/parallel/crew_parallel.cpp: 100,000 trivial calls with the default options
(n_jobs=None: sequential) and with n_jobs=2 (loky), and 400 calls of about 5 ms on 2 workers.
Usage: python_parallel.py [REPEATS]"""
import statistics
import sys
import time

from joblib import Parallel, delayed


def trivial(x):
    return x + 1


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
    rounds = 1000
    per_round = seconds(lambda: work(rounds)) / rounds
    rounds = int(0.005 / per_round)
    per_round = seconds(lambda: work(rounds)) / rounds
    rounds = int(0.005 / per_round)
    serial = [seconds(lambda: [work(rounds) for _ in range(400)]) for _ in range(repeats)]
    parallel = [seconds(lambda: two(delayed(work)(rounds) for _ in range(400)))
                for _ in range(repeats)]
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"400 calls of 5 ms: serial {s:.3f} s  joblib Parallel(n_jobs=2) {p:.3f} s "
          f"(speedup {s / p:.3f})")


if __name__ == "__main__":
    main()
