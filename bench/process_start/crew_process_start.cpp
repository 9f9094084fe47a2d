// Time to start a crew::Process with an empty target and join it, per start method.
// Usage: crew_process_start [ROUNDS]   (prints: method median_us p90_us)
#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>

#include "../timing.hpp"

void empty_target() {}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
    for (auto method :
         {crew::StartMethod::forkserver, crew::StartMethod::fork, crew::StartMethod::spawn}) {
        std::vector<double> samples;
        for (int i = 0; i < rounds + 10; ++i) {
            auto start = std::chrono::steady_clock::now();
            crew::Process p({.start_method = method}, empty_target);
            p.start();
            p.join();
            std::chrono::duration<double, std::micro> took =
                std::chrono::steady_clock::now() - start;
            if (*p.exitcode() != 0) return 1;
            if (i >= 10) samples.push_back(took.count());  // the first few warm caches up
        }
        Summary s = summarize(samples);
        std::printf("crew %-10s %10.1f %10.1f\n", crew::to_string(method).data(), s.median, s.p90);
    }
}
