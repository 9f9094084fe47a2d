// The main demo, after seed 001's "How to Get the Most Out of Python Multiprocessing": the square
// roots of range(10, N) with Pool.map against a serial loop, for N = 5,000,000 (parallelism
// pays) and N = 100,000 (it does not, in Python), then the same work on ThreadPoolExecutor, and
// a pool that shrugs off a crashing task. Run by the README's first command.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <crew/crew.hpp>
#include <csignal>
#include <cstdio>
#include <vector>

double root(long x) {
    return std::sqrt(static_cast<double>(x));
}

double crash_on_seven(long x) {
    if (x == 7) std::raise(SIGSEGV);
    return root(x);
}

// The median of five runs: on a virtual machine the first touch of fresh memory makes single
// runs swing (a first 40 MB result can take four times as long as the next).
template <class Work>
double median_seconds(Work&& work) {
    std::vector<double> times;
    for (int run = 0; run < 5; ++run) {
        auto start = std::chrono::steady_clock::now();
        work();
        times.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    std::printf("crew demo: square roots of range(10, N), %d CPUs, medians of 5 runs\n\n",
                crew::cpu_count());
    // Python 3.11 with Pool(2) on the machine crew is measured on (bench/sqrt/run.sh,
    // 2026-12-01; bench/README.md), and the seed author's laptop.
    const char* python[] = {
        "Python, measured: 0.5-0.7 s with Pool, 0.24-0.29 s serial (the seed's laptop: "
        "1.64 s vs 2.74 s)",
        "Python, measured: 0.006-0.012 s with Pool, 0.003-0.005 s serial (the seed's "
        "laptop: 0.38 s vs 0.005 s)"};
    crew::Pool pool;
    int run = 0;
    for (long n : {5'000'000L, 100'000L}) {
        // Each run makes a fresh result vector, as seed 001's Python does.
        std::vector<double> serial;
        double serial_time = median_seconds([&] {
            std::vector<double> roots;
            roots.reserve(static_cast<std::size_t>(n - 10));
            for (long x = 10; x < n; ++x) roots.push_back(root(x));
            serial = std::move(roots);
        });
        std::vector<double> parallel;
        double pool_time = median_seconds([&] { parallel = pool.map(root, crew::range(10L, n)); });

        std::vector<double> threaded;
        double thread_time = median_seconds([&] {
            std::vector<double> roots(static_cast<std::size_t>(n - 10));  // its faults count too
            crew::ThreadPoolExecutor threads({.max_workers = crew::cpu_count()});
            long slice = (n - 10 + crew::cpu_count() - 1) / crew::cpu_count();
            std::vector<crew::Future<void>> parts;
            for (long begin = 10; begin < n; begin += slice) {
                parts.push_back(threads.submit([&roots, begin, end = std::min(n, begin + slice)] {
                    for (long x = begin; x < end; ++x) roots[x - 10] = root(x);
                }));
            }
            for (auto& part : parts) part.result();
            threaded = std::move(roots);
        });
        bool same = parallel == serial && threaded == serial;
        std::printf("N = %ld\n", n);
        std::printf("  serial loop                %8.4f s\n", serial_time);
        std::printf("  crew::Pool.map             %8.4f s  (%.2fx the serial time)\n", pool_time,
                    pool_time / serial_time);
        std::printf("  crew::ThreadPoolExecutor   %8.4f s  (%.2fx the serial time)\n", thread_time,
                    thread_time / serial_time);
        std::printf("  results identical: %s\n  %s\n\n", same ? "yes" : "NO", python[run++]);
    }

    std::printf("a task that segfaults fails alone:\n");
    auto results = pool.imap(crash_on_seven, crew::range(5L, 10L), 1);
    for (auto it = results.begin(); it != results.end(); ++it) {
        try {
            std::printf("  %.4f\n", *it);
        } catch (const crew::WorkerDied& died) {
            std::printf("  failed: %s\n", died.what());
        }
    }
    std::printf("the pool goes on: pool.apply(root, 144L) = %.1f\n", pool.apply(root, 144L));
}
