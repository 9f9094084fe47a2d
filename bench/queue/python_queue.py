"""Throughput of multiprocessing.Queue from one producer process to one consumer, as
crew_queue.cpp measures it (fewer small messages: Python is slower).
Usage: python3 python_queue.py [REPEATS]"""
import multiprocessing as mp
import statistics
import sys
import time

SMALL_MESSAGES = 100_000
LARGE_MESSAGES = 1_000
LARGE_SIZE = 1 << 20


def put_numbers(queue, go):
    go.wait()
    for i in range(SMALL_MESSAGES):
        queue.put(i)


def put_blocks(queue, go):
    block = b"b" * LARGE_SIZE
    go.wait()
    for _ in range(LARGE_MESSAGES):
        queue.put(block)


def time_transfer(producer, count):
    queue, go = mp.Queue(), mp.Event()
    process = mp.Process(target=producer, args=(queue, go))
    process.start()
    begin = time.perf_counter()
    go.set()
    for _ in range(count):
        queue.get()
    elapsed = time.perf_counter() - begin
    process.join()
    return elapsed


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    small = [SMALL_MESSAGES / time_transfer(put_numbers, SMALL_MESSAGES) for _ in range(repeats)]
    large = [LARGE_MESSAGES * LARGE_SIZE / time_transfer(put_blocks, LARGE_MESSAGES) / 1e9
             for _ in range(repeats)]
    print(f"python Queue 8-byte messages {statistics.median(small):10.0f} msgs/s")
    print(f"python Queue 1 MiB messages  {statistics.median(large):10.2f} GB/s")


if __name__ == "__main__":
    main()
