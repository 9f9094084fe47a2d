// The main demo, after seed 001's "How to Get the Most Out of Python Multiprocessing": the square
// roots of range(10, N) with Pool.map against a serial loop, for N = 5,000,000 (parallelism
// pays) and N = 100,000 (it does not, in Python), then the same work on ThreadPoolExecutor, and
// a pool that shrugs off a crashing task. Beside each N, Python's own figures, measured in the
// same run by demo.py, when python3 is there. Run by the README's first command.
#include <sys/wait.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <crew/crew.hpp>
#include <csignal>
#include <cstdio>
#include <string>
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

// Runs demo.py for n beside crew, with as many processes; says what it measured, or why not.
std::string python_figures(long n, int processes) {
    const std::string command = "python3 '" CREW_DEMO_PYTHON "' " + std::to_string(n) + " " +
                                std::to_string(processes) + " 2>/dev/null";
    FILE* output = ::popen(command.c_str(), "r");
    if (output == nullptr) return "Python not run: cannot start a shell";
    double serial = 0, pool = 0;
    const int read = std::fscanf(output, "serial %lf pool %lf", &serial, &pool);
    const int status = ::pclose(output);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return "Python not found (python3)";
    if (read != 2 || status != 0) return "Python did not finish (python3 " CREW_DEMO_PYTHON ")";
    char line[160];
    std::snprintf(line, sizeof line,
                  "Python, measured now: serial %.4f s, Pool(%d).map %.4f s (%.2fx the serial "
                  "time)",
                  serial, processes, pool, pool / serial);
    return line;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    std::printf("crew demo: square roots of range(10, N), %d CPUs, medians of 5 runs\n\n",
                crew::cpu_count());
    crew::Pool pool;
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
        std::printf("  results identical: %s\n  %s\n\n", same ? "yes" : "NO",
                    python_figures(n, crew::cpu_count()).c_str());
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
