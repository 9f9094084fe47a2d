"""Time to start a multiprocessing.Process with an empty target and join it, per start method.

Usage: python3 python_process_start.py [ROUNDS]   (prints: method median_us p90_us)
"""
import multiprocessing
import sys
import time


def empty_target():
    pass


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for method in ("forkserver", "fork", "spawn"):
        context = multiprocessing.get_context(method)
        samples = []
        for i in range(rounds + 10):
            start = time.perf_counter()
            p = context.Process(target=empty_target)
            p.start()
            p.join()
            took = (time.perf_counter() - start) * 1e6
            assert p.exitcode == 0
            if i >= 10:
                samples.append(took)
        samples.sort()
        print(f"python {method:<10} {samples[len(samples) // 2]:10.1f} "
              f"{samples[len(samples) * 9 // 10]:10.1f}")


if __name__ == "__main__":
    main()
