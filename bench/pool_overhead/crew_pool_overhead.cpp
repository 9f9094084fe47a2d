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

// Each repeat: 10,000 round trips in a row, sorted; prints the medians of their p50 and p99.
template <class Trip>
void round_trips(const char* name, int repeats, Trip&& trip) {
    std::vector<double> p50s, p99s;
    for (int r = 0; r < repeats; ++r) {
        std::vector<double> times;
        for (int i = 0; i < 10'000; ++i) {
            auto start = Clock::now();
            trip(i);
            times.push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
        std::sort(times.begin(), times.end());
        p50s.push_back(times[times.size() / 2]);
        p99s.push_back(times[times.size() * 99 / 100]);
    }
    std::printf("crew %-16s p50 %8.1f us\n", name, summarize(p50s).median);
    std::printf("crew %-16s p99 %8.1f us\n", name, summarize(p99s).median);
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
    round_trips("apply", repeats, [&](int i) { (void)pool.apply(increment, i); });
    round_trips("apply-async-get", repeats,
                [&](int i) { (void)pool.apply_async(increment, i).get(); });
    round_trips("submit-result", repeats,
                [&](int i) { (void)executor.submit(increment, i).result(); });
}
