// Makespan of 60 sleeps of 8, 40 and 120 ms in a fixed order on 2 workers, through submit,
// map with chunksize 1 and imap_unordered, beside greedy list scheduling of the same order (each
// task to the worker that frees first: computed, not measured).
// Usage: crew_mixed_lengths [REPEATS]   (prints: measure value unit)
#include <algorithm>
#include <array>
#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "../timing.hpp"

int sleep_ms(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}

// The same order as python_mixed_lengths.py: 20 of each length, permuted by i -> 37 i mod 60.
std::vector<int> durations() {
    constexpr std::array<int, 3> lengths{8, 40, 120};
    std::vector<int> all(60);
    for (int i = 0; i < 60; ++i) all[(37 * i) % 60] = lengths[i % 3];
    return all;
}

double greedy_makespan_ms(const std::vector<int>& tasks, int workers) {
    std::vector<double> free_at(workers, 0.0);
    for (int task : tasks) *std::min_element(free_at.begin(), free_at.end()) += task;
    return *std::max_element(free_at.begin(), free_at.end());
}

template <class Run>
void report(const char* name, int repeats, double greedy, Run&& run) {
    std::vector<double> makespans;
    for (int r = 0; r < repeats; ++r) makespans.push_back(seconds(run) * 1e3);
    const double median = summarize(makespans).median;
    std::printf("crew %-16s %8.0f ms  (%.1f%% over greedy)\n", name, median,
                100.0 * (median / greedy - 1.0));
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 3;
    const std::vector<int> tasks = durations();
    const double greedy = greedy_makespan_ms(tasks, 2);
    std::printf("greedy list scheduling  %8.0f ms  (computed)\n", greedy);
    crew::ProcessPoolExecutor executor({.max_workers = 2});
    crew::Pool pool(2);
    (void)pool.map(sleep_ms, std::vector<int>{0, 0});  // both pools started
    (void)executor.submit(sleep_ms, 0).result();
    report("submit", repeats, greedy, [&] {
        std::vector<crew::Future<int>> futures;
        for (int task : tasks) futures.push_back(executor.submit(sleep_ms, task));
        for (auto& future : futures) (void)future.result();
    });
    report("map-chunksize-1", repeats, greedy, [&] { (void)pool.map(sleep_ms, tasks, 1); });
    report("imap-unordered", repeats, greedy, [&] {
        for (int done : pool.imap_unordered(sleep_ms, tasks, 1)) (void)done;
    });
}
