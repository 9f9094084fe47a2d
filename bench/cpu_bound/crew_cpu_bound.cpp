// CPU-bound tasks: 400 tasks of about 5 ms each, serially, on crew::Pool(2), through
// crew::Parallel(n_jobs = 2), and on two bare forked processes that split the same work (the
// ceiling for 2 processes on this machine).
// Usage: crew_cpu_bound [REPEATS]   (prints the median times and speedups)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../timing.hpp"

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
    constexpr int kTasks = 400;
    // Rounds for about 5 ms of work, measured on this machine.
    std::uint64_t rounds = 1'000'000;
    volatile std::uint64_t kept = 0;  // used, so the compiler keeps the call being timed
    double per_round = seconds([&] { kept = work(rounds); }) / static_cast<double>(rounds);
    rounds = static_cast<std::uint64_t>(0.005 / per_round);
    // Again at full size: a short first measure runs before the CPU has settled.
    per_round = seconds([&] { kept = work(rounds); }) / static_cast<double>(rounds);
    rounds = static_cast<std::uint64_t>(0.005 / per_round);
    std::vector<std::uint64_t> tasks(kTasks, rounds);

    crew::Pool pool(2);
    crew::Parallel parallel({.n_jobs = 2});
    std::vector<double> serial, crew_times, parallel_times, bare;
    for (int r = 0; r < repeats; ++r) {
        serial.push_back(seconds([&] {
            std::uint64_t sink = 0;
            for (auto t : tasks) sink += work(t);
            if (sink == 42) std::puts("");
        }));
        crew_times.push_back(seconds([&] { (void)pool.map(work, tasks); }));
        parallel_times.push_back(seconds([&] { (void)parallel(crew::delayed(work), tasks); }));
        bare.push_back(seconds([&] {
            pid_t children[2];
            for (int c = 0; c < 2; ++c) {
                children[c] = fork();
                if (children[c] == 0) {
                    std::uint64_t sink = 0;
                    for (int i = c; i < kTasks; i += 2) sink += work(tasks[i]);
                    _exit(sink == 42 ? 1 : 0);
                }
            }
            for (pid_t child : children) waitpid(child, nullptr, 0);
        }));
    }
    double s = summarize(serial).median, c = summarize(crew_times).median,
           p = summarize(parallel_times).median, b = summarize(bare).median;
    std::printf("task          %8.2f ms each (%llu rounds)\n", 1000 * s / kTasks,
                static_cast<unsigned long long>(rounds));
    std::printf("serial        %8.3f s\n", s);
    std::printf("crew Pool(2)  %8.3f s  speedup %.3f\n", c, s / c);
    std::printf("crew Parallel %8.3f s  speedup %.3f\n", p, s / p);
    std::printf("bare 2 forks  %8.3f s  speedup %.3f\n", b, s / b);
    std::printf("crew / bare speedup: %.1f%% (goal >= 95%%)\n", 100 * (s / c) / (s / b));
    std::printf("crew Parallel / bare speedup: %.1f%% (goal >= 95%%)\n", 100 * (s / p) / (s / b));
}
