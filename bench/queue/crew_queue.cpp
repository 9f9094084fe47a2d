// Throughput of crew::Queue from one producer process to one consumer (issue 4's Queue
// benchmark): 1,000,000 messages of 8 bytes, then 1,000 messages of 1 MiB. The clock runs from
// the producer's go to the consumer's last get.
// Usage: crew_queue [REPEATS]   (prints the median of the repeats)
#include <crew/crew.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../timing.hpp"

namespace {

constexpr std::uint64_t kSmallMessages = 1'000'000;
constexpr int kLargeMessages = 1'000;
constexpr std::size_t kLargeSize = 1 << 20;

void put_numbers(crew::Queue<std::uint64_t> queue, crew::Event go) {
    go.wait();
    for (std::uint64_t i = 0; i < kSmallMessages; ++i) queue.put(i);
}

void put_blocks(crew::Queue<std::vector<char>> queue, crew::Event go) {
    const std::vector<char> block(kLargeSize, 'b');
    go.wait();
    for (int i = 0; i < kLargeMessages; ++i) queue.put(block);
}

// Seconds from go to the last message got, or a negative number if a message was wrong.
template <class T, class Producer>
double time_transfer(Producer producer, int count, std::size_t expected_size) {
    crew::Queue<T> queue;
    crew::Event go;
    crew::Process process(producer, queue, go);
    process.start();
    bool right = true;
    const double elapsed = seconds([&] {
        go.set();
        for (int i = 0; i < count; ++i) {
            const T message = queue.get();
            if constexpr (std::is_integral_v<T>) {
                right &= message == static_cast<T>(i);
            } else {
                right &= message.size() == expected_size;
            }
        }
    });
    process.join();
    return right ? elapsed : -1;
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    std::vector<double> small_rates, large_rates;
    for (int r = 0; r < repeats; ++r) {
        const double small = time_transfer<std::uint64_t>(put_numbers, kSmallMessages, 8);
        const double large = time_transfer<std::vector<char>>(put_blocks, kLargeMessages, kLargeSize);
        if (small < 0 || large < 0) return 1;
        small_rates.push_back(kSmallMessages / small);
        large_rates.push_back(kLargeMessages * double(kLargeSize) / large / 1e9);
    }
    std::printf("crew Queue 8-byte messages  %10.0f msgs/s (goal >= 2,000,000)\n",
                summarize(small_rates).median);
    std::printf("crew Queue 1 MiB messages   %10.2f GB/s   (goal >= 3)\n",
                summarize(large_rates).median);
    return 0;
}
