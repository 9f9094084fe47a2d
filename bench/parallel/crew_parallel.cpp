// crew::Parallel against joblib (python_parallel.py): 100,000 trivial calls with the default
// options (one job: the calling thread) and with n_jobs = 2 (processes), and 400 calls of about
// 5 ms on 2 workers against two bare forked processes splitting the same work.
// Usage: crew_parallel [REPEATS]   (prints medians)
#include <sys/wait.h>
#include <unistd.h>

#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <ranges>
#include <vector>

#include "../timing.hpp"

int trivial(int x) {
    return x + 1;
}

// A chain of dependent multiply-adds the compiler cannot fold: time grows with rounds.
std::uint64_t work(std::uint64_t rounds) {
    std::uint64_t x = rounds;
    for (std::uint64_t i = 0; i < rounds; ++i)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
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

    constexpr int tasks = 400;
    std::uint64_t rounds = 1'000'000;
    volatile std::uint64_t kept = 0;
    double per_round = seconds([&] { kept = work(rounds); }) / static_cast<double>(rounds);
    rounds = static_cast<std::uint64_t>(0.005 / per_round);
    per_round = seconds([&] { kept = work(rounds); }) / static_cast<double>(rounds);
    rounds = static_cast<std::uint64_t>(0.005 / per_round);
    const std::vector<std::uint64_t> sizes(tasks, rounds);
    std::vector<double> serial, crew_times, bare;
    for (int r = 0; r < repeats; ++r) {
        serial.push_back(seconds([&] {
            std::uint64_t sink = 0;
            for (auto size : sizes) sink += work(size);
            if (sink == 42) std::puts("");
        }));
        crew_times.push_back(seconds([&] { (void)two(crew::delayed(work), sizes); }));
        bare.push_back(seconds([&] {
            pid_t children[2];
            for (int c = 0; c < 2; ++c) {
                children[c] = fork();
                if (children[c] == 0) {
                    std::uint64_t sink = 0;
                    for (int i = c; i < tasks; i += 2) sink += work(sizes[i]);
                    _exit(sink == 42 ? 1 : 0);
                }
            }
            for (pid_t child : children) waitpid(child, nullptr, 0);
        }));
    }
    const double s = summarize(serial).median, c = summarize(crew_times).median,
                 b = summarize(bare).median;
    std::printf(
        "400 calls of 5 ms: serial %.3f s  crew Parallel(n_jobs=2) %.3f s (speedup %.3f)"
        "  2 bare forks %.3f s (speedup %.3f)  crew/bare %.1f%% (goal >= 95%%)\n",
        s, c, s / c, b, s / b, 100.0 * (s / c) / (s / b));
}
