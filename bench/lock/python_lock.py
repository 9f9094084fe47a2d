"""multiprocessing.Lock acquire + release, uncontended and contended by two processes, as
crew_lock.cpp does. Usage: python3 python_lock.py [REPEATS]"""
import multiprocessing as mp
import statistics
import sys
import time

UNCONTENDED = 1_000_000
CONTENDED = 200_000  # in each of the two processes


def take_and_give(lock, start):
    start.wait()
    for _ in range(CONTENDED):
        lock.acquire()
        lock.release()


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    lock = mp.Lock()
    uncontended, contended = [], []
    for _ in range(repeats):
        begin = time.perf_counter()
        for _ in range(UNCONTENDED):
            lock.acquire()
            lock.release()
        uncontended.append((time.perf_counter() - begin) * 1e9 / UNCONTENDED)
        start = mp.Barrier(3)
        children = [mp.Process(target=take_and_give, args=(lock, start)) for _ in range(2)]
        for child in children:
            child.start()
        begin = time.perf_counter()
        start.wait()
        for child in children:
            child.join()
        contended.append((time.perf_counter() - begin) * 1e9 / (2 * CONTENDED))
    print(f"python Lock uncontended      {statistics.median(uncontended):6.1f} ns per acquire + release")
    print(f"python Lock, 2 processes     {statistics.median(contended):6.1f} ns per acquire + release")


if __name__ == "__main__":
    main()
