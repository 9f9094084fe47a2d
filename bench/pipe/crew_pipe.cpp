// Round trip of a small message over crew::Pipe between two processes (issue 4's Pipe
// benchmark): the parent sends an int, the child sends it back plus one, 10,000 times.
// Usage: crew_pipe [REPEATS]   (prints the median of the repeats' p50 and p99, in µs)
#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../timing.hpp"

namespace {

constexpr int kRoundTrips = 10'000;

void answer(crew::Connection<int> connection) {
    try {
        while (true) connection.send(connection.recv() + 1);
    } catch (const crew::EOFError&) {
    }
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    std::vector<double> p50s, p99s;
    for (int r = 0; r < repeats; ++r) {
        auto [parent, child] = crew::Pipe<int>();
        crew::Process player(answer, std::move(child));
        player.start();
        std::vector<double> trips;
        trips.reserve(kRoundTrips);
        int ball = 0;
        for (int i = 0; i < kRoundTrips; ++i) {
            trips.push_back(seconds([&] {
                                parent.send(ball);
                                ball = parent.recv();
                            }) *
                            1e6);
        }
        parent.close();
        player.join();
        if (ball != kRoundTrips) return 1;
        std::sort(trips.begin(), trips.end());
        p50s.push_back(trips[trips.size() / 2]);
        p99s.push_back(trips[trips.size() * 99 / 100]);
    }
    std::printf("crew Pipe round trip      p50 %6.1f us  p99 %6.1f us (goal p50 <= 5)\n",
                summarize(p50s).median, summarize(p99s).median);
    return 0;
}
