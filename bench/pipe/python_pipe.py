"""Round trip of a small message over multiprocessing.Pipe, as crew_pipe.cpp does.
Usage: python3 python_pipe.py [REPEATS]"""
import multiprocessing as mp
import statistics
import sys
import time

ROUND_TRIPS = 10_000


def answer(connection, other_end):
    other_end.close()  # forked with both ends: without this, the parent's close is no EOF here
    try:
        while True:
            connection.send(connection.recv() + 1)
    except EOFError:
        pass


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    p50s, p99s = [], []
    for _ in range(repeats):
        parent, child = mp.Pipe()
        player = mp.Process(target=answer, args=(child, parent))
        player.start()
        child.close()
        trips = []
        ball = 0
        for _ in range(ROUND_TRIPS):
            begin = time.perf_counter()
            parent.send(ball)
            ball = parent.recv()
            trips.append((time.perf_counter() - begin) * 1e6)
        parent.close()
        player.join()
        trips.sort()
        p50s.append(trips[len(trips) // 2])
        p99s.append(trips[len(trips) * 99 // 100])
    print(f"python Pipe round trip    p50 {statistics.median(p50s):6.1f} us  "
          f"p99 {statistics.median(p99s):6.1f} us")


if __name__ == "__main__":
    main()
