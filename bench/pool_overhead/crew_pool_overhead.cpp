// Per-task overhead of crew's pools: trivial int -> int tasks on 2 workers.
// Usage: crew_pool_overhead [REPEATS]   (prints: measure value unit)
#include <algorithm>
#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../timing.hpp"

int increment(int x) {
    return x + 1;
}

using Clock = std::chrono::steady_clock;

template <class Work>
double median_rate(int repeats, double items, Work&& work) {
    std::vector<double> rates;
    for (int i = 0; i < repeats; ++i) {
        auto start = Clock::now();
        work();
        rates.push_back(items / std::chrono::duration<double>(Clock::now() - start).count());
    }
    return summarize(rates).median;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    constexpr int kItems = 100'000;
    crew::Pool pool(2);
    crew::ProcessPoolExecutor executor({.max_workers = 2});

    std::printf("crew map-chunksize-1      %12.0f tasks/s\n", median_rate(repeats, kItems, [&] {
                    (void)pool.map(increment, crew::range(kItems), 1);
                }));
    std::printf("crew map-automatic        %12.0f items/s\n", median_rate(repeats, kItems, [&] {
                    (void)pool.map(increment, crew::range(kItems));
                }));
    std::printf("crew submit-and-result    %12.0f tasks/s\n", median_rate(repeats, kItems, [&] {
                    std::vector<crew::Future<int>> futures;
                    futures.reserve(kItems);
                    for (int i = 0; i < kItems; ++i)
                        futures.push_back(executor.submit(increment, i));
                    for (auto& future : futures) (void)future.result();
                }));
    // Each repeat: 10,000 round trips in a row, sorted; then the medians of their p50 and p99.
    std::vector<double> p50s, p99s;
    for (int r = 0; r < repeats; ++r) {
        std::vector<double> round_trips;
        for (int i = 0; i < 10'000; ++i) {
            auto start = Clock::now();
            (void)pool.apply(increment, i);
            round_trips.push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
        std::sort(round_trips.begin(), round_trips.end());
        p50s.push_back(round_trips[round_trips.size() / 2]);
        p99s.push_back(round_trips[round_trips.size() * 99 / 100]);
    }
    std::printf("crew round-trip-p50       %12.1f us\n", summarize(p50s).median);
    std::printf("crew round-trip-p99       %12.1f us\n", summarize(p99s).median);
}
