# 64 MiB of bytes to a multiprocessing worker and back, as crew_bandwidth does.
# Usage: python3 python_bandwidth.py [REPEATS]
import statistics
import sys
import time
from multiprocessing import Pool

SIZE = 64 << 20


def echo(data):
    return data


if __name__ == "__main__":
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    data = bytes(i * 131 % 256 for i in range(256)) * (SIZE // 256)
    with Pool(1) as pool:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            back = pool.apply(echo, (data,))
            times.append(time.perf_counter() - start)
            assert back == data
    print(f"python Pool.apply(echo) {2 * SIZE / statistics.median(times) / 1e9:6.3f} GB/s")
