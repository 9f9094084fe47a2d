"""How soon Python's pools see a busy worker killed from outside, beside crew_worker_death.

concurrent.futures.ProcessPoolExecutor: time from SIGKILL to the future's BrokenProcessPool
(the whole executor breaks; a new one is made for each kill). multiprocessing.Pool: whether
apply_async's result comes at all within 5 s (Python's Pool loses the call and waits forever).
Usage: python_worker_death.py [KILLS]
"""
import concurrent.futures
import multiprocessing
import os
import signal
import statistics
import sys
import time


def report_then_spin(running):
    running.put(os.getpid())
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        pass
    return 0


_running = None


def keep_queue(running):
    global _running
    _running = running


def report_then_spin_kept():
    return report_then_spin(_running)


def main():
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    samples = []
    stuck = 0
    for _ in range(kills):
        # A fresh queue each time: one a killed process was using may be broken (Python's docs).
        running = multiprocessing.Queue()
        executor = concurrent.futures.ProcessPoolExecutor(
            2, initializer=keep_queue, initargs=(running,))
        future = executor.submit(report_then_spin_kept)
        worker = running.get(timeout=30)
        killed = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        try:
            future.result(timeout=10)
            print("the call survived its worker's SIGKILL")
        except concurrent.futures.process.BrokenProcessPool:
            samples.append((time.monotonic() - killed) * 1000)
        except concurrent.futures.TimeoutError:
            stuck += 1
        # A broken executor's shutdown may itself hang: end what is left of it by pid.
        for process in list(executor._processes.values()):
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        executor.shutdown(wait=False, cancel_futures=True)
    if samples:
        samples.sort()
        print("%-44s p50 %6.2f ms   max %6.2f ms   (%d kills)" % (
            "Python ProcessPoolExecutor -> BrokenProcessPool", statistics.median(samples),
            samples[-1], len(samples)))
    if stuck:
        print("Python ProcessPoolExecutor: no answer 10 s after the SIGKILL in %d of %d kills" % (
            stuck, kills))

    running = multiprocessing.Queue()
    with multiprocessing.Pool(2, initializer=keep_queue, initargs=(running,)) as pool:
        result = pool.apply_async(report_then_spin_kept)
        worker = running.get(timeout=30)
        os.kill(worker, signal.SIGKILL)
        result.wait(5)
        print("Python multiprocessing.Pool: %s 5 s after its worker's SIGKILL" % (
            "the result came" if result.ready() else "no result nor error"))
        pool.terminate()


if __name__ == "__main__":
    main()
