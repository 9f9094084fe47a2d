// crew::Lock acquire + release: uncontended in one thread, and contended by two processes that
// each take and give back the lock in a loop (issue 4's lock benchmark).
// Usage: crew_lock [REPEATS]   (prints medians, in ns per acquire + release)
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "../timing.hpp"

namespace {

constexpr int kUncontended = 10'000'000;
constexpr int kContended = 1'000'000;  // in each of the two processes

void take_and_give(crew::Lock lock, crew::Barrier start) {
    start.wait();
    for (int i = 0; i < kContended; ++i) {
        lock.acquire();
        lock.release();
    }
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    crew::Lock lock;
    std::mutex plain;
    std::vector<double> uncontended, reference, contended;
    for (int r = 0; r < repeats; ++r) {
        uncontended.push_back(seconds([&] {
                                  for (int i = 0; i < kUncontended; ++i) {
                                      lock.acquire();
                                      lock.release();
                                  }
                              }) *
                              1e9 / kUncontended);
        reference.push_back(seconds([&] {
                                for (int i = 0; i < kUncontended; ++i) {
                                    plain.lock();
                                    plain.unlock();
                                }
                            }) *
                            1e9 / kUncontended);
        crew::Barrier start(3);
        crew::Process first(take_and_give, lock, start), second(take_and_give, lock, start);
        first.start();
        second.start();
        contended.push_back(seconds([&] {
                                start.wait();
                                first.join();
                                second.join();
                            }) *
                            1e9 / (2.0 * kContended));
    }
    std::printf("crew Lock uncontended        %6.1f ns per acquire + release (goal <= 50)\n",
                summarize(uncontended).median);
    std::printf("std::mutex uncontended       %6.1f ns (reference)\n", summarize(reference).median);
    std::printf("crew Lock, 2 processes       %6.1f ns per acquire + release\n",
                summarize(contended).median);
    return 0;
}
