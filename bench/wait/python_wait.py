"""What multiprocessing.connection.wait adds to a round trip, as crew_wait.cpp measures: over
two Queues (get(), or wait([replies._reader, child.sentinel]) then get()) and over a Pipe
(recv(), or wait([connection, child.sentinel]) then recv()), 5,000 round trips each.
Usage: python3 python_wait.py [REPEATS]"""
import multiprocessing as mp
from multiprocessing.connection import wait
import statistics
import sys
import time

ROUND_TRIPS = 5_000
SLOW_REPLY = 200e-6  # seconds, as crew_wait.cpp's


def echo_queue(requests, replies, delay):
    while True:
        ball = requests.get()
        if ball < 0:
            return
        if delay:
            time.sleep(delay)
        replies.put(ball + 1)


def echo_connection(connection, other_end):
    other_end.close()
    try:
        while True:
            connection.send(connection.recv() + 1)
    except EOFError:
        pass


def percentiles(trips):
    trips.sort()
    return trips[len(trips) // 2], trips[len(trips) * 99 // 100]


def queue_round(with_wait, delay=0):
    requests, replies = mp.Queue(), mp.Queue()
    child = mp.Process(target=echo_queue, args=(requests, replies, delay))
    child.start()
    trips = []
    for i in range(ROUND_TRIPS):
        begin = time.perf_counter()
        requests.put(i)
        if with_wait:
            ready = wait([replies._reader, child.sentinel])
            assert ready[0] is replies._reader
        assert replies.get() == i + 1
        trips.append((time.perf_counter() - begin) * 1e6)
    requests.put(-1)
    child.join()
    return percentiles(trips)


def connection_round(with_wait):
    parent, child_end = mp.Pipe()
    child = mp.Process(target=echo_connection, args=(child_end, parent))
    child.start()
    child_end.close()
    trips = []
    for i in range(ROUND_TRIPS):
        begin = time.perf_counter()
        parent.send(i)
        if with_wait:
            ready = wait([parent, child.sentinel])
            assert ready[0] is parent
        assert parent.recv() == i + 1
        trips.append((time.perf_counter() - begin) * 1e6)
    parent.close()
    child.join()
    return percentiles(trips)


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = {
        "Queue round trip, get()": lambda: queue_round(False),
        "Queue round trip, wait() + get()": lambda: queue_round(True),
        "Queue, reply after 200 us, get()": lambda: queue_round(False, SLOW_REPLY),
        "Queue, reply after 200 us, wait()": lambda: queue_round(True, SLOW_REPLY),
        "Pipe round trip, recv()": lambda: connection_round(False),
        "Pipe round trip, wait() + recv()": lambda: connection_round(True),
    }
    results = {name: [] for name in rounds}
    for _ in range(repeats):
        for name, run in rounds.items():
            results[name].append(run())
    for name, runs in results.items():
        print(f"python {name:<38} p50 {statistics.median(r[0] for r in runs):6.1f} us  "
              f"p99 {statistics.median(r[1] for r in runs):6.1f} us")


if __name__ == "__main__":
    main()
