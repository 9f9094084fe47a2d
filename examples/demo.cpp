// The main demo, after seed 001's "How to Get the Most Out of Python Multiprocessing": the square
// roots of range(10, N) with Pool.map against a serial loop, for N = 5,000,000 (parallelism
// pays) and N = 100,000 (it does not, in Python), then the same work on ThreadPoolExecutor, and
// a pool that shrugs off a crashing task. Run by the README's first command.
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

template <class Work>
double seconds(Work&& work) {
    auto start = std::chrono::steady_clock::now();
    work();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    std::printf("crew demo: square roots of range(10, N), %d CPUs\n\n", crew::cpu_count());
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
        std::vector<double> serial;
        double serial_time = seconds([&] {
            serial.reserve(static_cast<std::size_t>(n - 10));
            for (long x = 10; x < n; ++x) serial.push_back(root(x));
        });
        std::vector<double> parallel;
        double pool_time = seconds([&] { parallel = pool.map(root, crew::range(10L, n)); });

        std::vector<double> threaded;
        double thread_time = seconds([&] {
            threaded.resize(static_cast<std::size_t>(n - 10));  // its page faults count too
            crew::ThreadPoolExecutor threads({.max_workers = crew::cpu_count()});
            long slice = (n - 10 + crew::cpu_count() - 1) / crew::cpu_count();
            std::vector<crew::Future<void>> parts;
            for (long begin = 10; begin < n; begin += slice) {
                parts.push_back(
                    threads.submit([&threaded, begin, end = std::min(n, begin + slice)] {
                        for (long x = begin; x < end; ++x) threaded[x - 10] = root(x);
                    }));
            }
            for (auto& part : parts) part.result();
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
