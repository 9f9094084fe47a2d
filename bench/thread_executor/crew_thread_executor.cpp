// crew::ThreadPoolExecutor against oneTBB's task_group: 1,000,000 trivial tasks on 2 threads,
// each submitted and its result taken (issue 3, benchmark 6).
// Usage: crew_thread_executor [REPEATS]   (prints: measure value unit)
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../timing.hpp"

namespace {

constexpr int kTasks = 1'000'000;
constexpr int kThreads = 2;

int increment(int x) {
    return x + 1;
}

// After one run untimed: threads started, memory touched, caches warm, for both libraries.
template <class Work>
double median_seconds(int repeats, Work&& work) {
    work();
    std::vector<double> seconds;
    for (int i = 0; i < repeats; ++i) {
        auto start = std::chrono::steady_clock::now();
        work();
        seconds.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return summarize(seconds).median;
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    long long checksum = 0;

    crew::ThreadPoolExecutor executor({.max_workers = kThreads});
    // All 1,000,000 futures alive at once: their memory is fresh, and a fresh page costs about
    // 17 us on these virtual machines (bench/README.md).
    double crew_all_time = median_seconds(repeats, [&] {
        std::vector<crew::Future<int>> futures;
        futures.reserve(kTasks);
        for (int i = 0; i < kTasks; ++i) futures.push_back(executor.submit(increment, i));
        for (auto& future : futures) checksum += future.result();
    });
    // The same tasks, 10,000 futures at a time: the steady state, as task_group runs.
    constexpr int kWindow = 10'000;
    double crew_window_time = median_seconds(repeats, [&] {
        std::vector<crew::Future<int>> futures;
        futures.reserve(kWindow);
        for (int start = 0; start < kTasks; start += kWindow) {
            for (int i = start; i < start + kWindow; ++i) {
                futures.push_back(executor.submit(increment, i));
            }
            for (auto& future : futures) checksum += future.result();
            futures.clear();
        }
    });

    // task_group has no futures: each task writes its result where the caller reads it after
    // wait(), the nearest thing to submit + result.
    tbb::task_arena arena(kThreads);
    double tbb_time = median_seconds(repeats, [&] {
        std::vector<int> results(kTasks);
        arena.execute([&] {
            tbb::task_group group;
            for (int i = 0; i < kTasks; ++i)
                group.run([&results, i] { results[i] = increment(i); });
            group.wait();
        });
        for (int result : results) checksum += result;
    });

    std::printf("crew submit+result, all futures kept  %10.0f tasks/s  (%.2fx oneTBB's time)\n",
                kTasks / crew_all_time, crew_all_time / tbb_time);
    std::printf("crew submit+result, 10,000 at a time  %10.0f tasks/s  (%.2fx oneTBB's time)\n",
                kTasks / crew_window_time, crew_window_time / tbb_time);
    std::printf("oneTBB task_group run+wait            %10.0f tasks/s\n", kTasks / tbb_time);
    return checksum == 0;  // keeps the work from being optimized away
}
