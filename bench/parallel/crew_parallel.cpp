// crew::Parallel against joblib (python_parallel.py): 100,000 trivial calls with the default
// options (one job: the calling thread) and with n_jobs = 2 (processes). Calls of 5 ms are in
// bench/cpu_bound, beside Pool::map and two bare forks.
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
}
