// crew::Parallel against joblib (python_parallel.py): 100,000 trivial calls with the default
// options (one job: the calling thread) and with n_jobs = 2 (processes); 1,000,000 on the threads
// backend, against Python's ThreadPoolExecutor; a new Parallel for each call of 100, with warm
// workers and without. Calls of 5 ms are in bench/cpu_bound, beside
// Pool::map and two bare forks.
// Usage: crew_parallel [REPEATS]   (prints medians)
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <ranges>
#include <vector>

#include "../timing.hpp"

int trivial(int x) {
    return x + 1;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 3;
    constexpr int calls = 100'000;
    auto delayed_calls = [] {
        return crew::range(calls) |
               std::views::transform([](int i) { return crew::delayed(trivial)(i); });
    };
    crew::Parallel by_default;
    crew::Parallel two({.n_jobs = 2});
    (void)two(delayed_calls());  // starts the workers, as joblib's first call does
    std::vector<double> default_times, two_times;
    for (int r = 0; r < repeats; ++r) {
        default_times.push_back(seconds([&] { (void)by_default(delayed_calls()); }));
        two_times.push_back(seconds([&] { (void)two(delayed_calls()); }));
    }
    std::printf("crew Parallel() %d trivial calls        %12.0f calls/s\n", calls,
                calls / summarize(default_times).median);
    std::printf("crew Parallel(n_jobs=2) %d trivial calls %11.0f calls/s\n", calls,
                calls / summarize(two_times).median);

    // The threads backend sends each call as a task of its own, as joblib's threading backend and
    // concurrent.futures.ThreadPoolExecutor do.
    constexpr int thread_calls = 1'000'000;
    crew::Parallel threads({.n_jobs = 2, .backend = crew::ParallelBackend::threads});
    (void)threads(crew::delayed(trivial), crew::range(1000));
    std::vector<double> thread_times;
    for (int r = 0; r < repeats; ++r) {
        thread_times.push_back(
            seconds([&] { (void)threads(crew::delayed(trivial), crew::range(thread_calls)); }));
    }
    std::printf("crew Parallel(n_jobs=2, threads) %d trivial calls %11.0f calls/s\n", thread_calls,
                thread_calls / summarize(thread_times).median);

    // A new Parallel each time, as a function that makes its own does: with the workers an ended
    // Parallel left warm (the default, loky's reusable executor), and with none kept.
    auto new_parallel = [&](const crew::ParallelOptions& options) {
        std::vector<double> times;
        for (int r = 0; r < repeats; ++r) {
            times.push_back(seconds([&] {
                crew::Parallel parallel(options);
                (void)parallel(crew::delayed(trivial), crew::range(100));
            }));
        }
        return summarize(times).median;
    };
    (void)new_parallel({.n_jobs = 2});  // leaves workers warm for the first timed one
    std::printf("crew new Parallel(n_jobs=2), 100 calls, warm workers %10.3f ms\n",
                new_parallel({.n_jobs = 2}) * 1e3);
    std::printf("crew new Parallel(n_jobs=2), 100 calls, no workers kept %7.3f ms\n",
                new_parallel({.n_jobs = 2, .idle_worker_timeout = std::chrono::seconds(0)}) * 1e3);
}
