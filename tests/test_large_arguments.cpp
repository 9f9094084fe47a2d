// Large arguments shared instead of copied (crew/detail/carried_span.hpp, ParallelOptions::
// max_nbytes; joblib's automatic memmapping): a task whose parameter is std::span<const T> reads a
// large vector in place in shared memory, copied once per call however many tasks take it; a
// crew::Array is never copied; small spans travel in the message; the workers let go of the
// memory once the call is over.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <ranges>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

// The name of the mapping that holds address in this process ("" for private memory): a memfd
// shows as "/memfd:<name> (deleted)".
std::string mapping_of(const void* address) {
    std::ifstream maps("/proc/self/maps");
    const auto at = reinterpret_cast<std::uintptr_t>(address);
    std::string line;
    while (std::getline(maps, line)) {
        std::uintptr_t begin = 0, end = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) != 2) continue;
        if (at < begin || at >= end) continue;
        const auto name = line.find("/memfd:");
        return name == std::string::npos ? ""
                                         : line.substr(name + 7, line.find(' ', name) - name - 7);
    }
    return "";
}

// A status field of /proc/<pid>/status, in KiB.
long status_kib(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    }
    return -1;
}

bool maps_memory_named(pid_t pid, const std::string& name) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::stringstream all;
    all << maps.rdbuf();
    return all.str().find("/memfd:" + name) != std::string::npos;
}

// What a task saw of its span argument.
struct Seen {
    double sum;
    long private_kib;  // the worker's anonymous resident memory
    int pid;
    bool in_argument_block;  // the elements lie in a block of shared memory crew made for them
    bool in_array;           // ... in a crew::Array's own block
};

Seen look_at_slice(std::span<const double> data, int slice, int slices) {
    const std::size_t length = data.size() / static_cast<std::size_t>(slices);
    const auto part = data.subspan(static_cast<std::size_t>(slice) * length, length);
    const std::string mapping = mapping_of(data.data());
    return {std::accumulate(part.begin(), part.end(), 0.0), status_kib(::getpid(), "RssAnon"),
            static_cast<int>(::getpid()), mapping == "crew-argument", mapping == "crew-array"};
}

double sum_of(std::span<const double> data) {
    return std::accumulate(data.begin(), data.end(), 0.0);
}

double expected_slice(const std::vector<double>& data, int slice, int slices) {
    const std::size_t length = data.size() / static_cast<std::size_t>(slices);
    const auto begin = data.begin() + static_cast<std::ptrdiff_t>(slice * length);
    return std::accumulate(begin, begin + static_cast<std::ptrdiff_t>(length), 0.0);
}

std::vector<double> counting(std::size_t count) {
    std::vector<double> data(count);
    std::iota(data.begin(), data.end(), 0.0);
    return data;
}

class LargeArgumentsTest : public ::testing::TestWithParam<crew::ParallelBackend> {};

TEST_P(LargeArgumentsTest, EveryBackendReadsTheSameSums) {
    const std::vector<double> data = counting(std::size_t{3} << 20);  // 24 MiB
    crew::Parallel parallel({.n_jobs = 2, .backend = GetParam()});
    constexpr int slices = 40;
    const std::vector<Seen> seen =
        parallel(crew::range(slices) | std::views::transform([&](int i) {
                     return crew::delayed(look_at_slice)(data, i, slices);
                 }));
    ASSERT_EQ(seen.size(), std::size_t{slices});
    for (int i = 0; i < slices; ++i) EXPECT_EQ(seen[i].sum, expected_slice(data, i, slices)) << i;
    if (GetParam() == crew::ParallelBackend::processes) {
        for (const Seen& one : seen) EXPECT_TRUE(one.in_argument_block) << "pid " << one.pid;
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, LargeArgumentsTest,
                         ::testing::Values(crew::ParallelBackend::processes,
                                           crew::ParallelBackend::threads,
                                           crew::ParallelBackend::serial),
                         [](const auto& info) { return info.param.name(); });

// The check: a 256 MiB vector given to 100 tasks is one shared copy, not 100, and no
// worker holds a private one; the workers let it go once the call is over.
TEST(LargeArguments, OneSharedCopyForAHundredTasks) {
    const std::size_t bytes = (crew::testing::address_sanitizer ? 64 : 256) << 20;
    const std::vector<double> data = counting(bytes / sizeof(double));
    const long caller_before = crew::testing::resident_kib();
    crew::Parallel parallel({.n_jobs = 2, .batch_size = 1});
    constexpr int tasks = 100;
    const std::vector<Seen> seen = parallel(crew::range(tasks) | std::views::transform([&](int i) {
                                                return crew::delayed(look_at_slice)(data, i, tasks);
                                            }));
    const long caller_growth = crew::testing::resident_kib() - caller_before;
    const long size_kib = static_cast<long>(bytes >> 10);
    std::set<pid_t> workers;
    for (int i = 0; i < tasks; ++i) {
        EXPECT_EQ(seen[i].sum, expected_slice(data, i, tasks));
        EXPECT_TRUE(seen[i].in_argument_block);
        // A worker's own memory stays well below one copy of the data.
        EXPECT_LT(seen[i].private_kib, size_kib / 2) << "worker " << seen[i].pid;
        workers.insert(seen[i].pid);
    }
    EXPECT_LE(workers.size(), 2u);
    if (!crew::testing::address_sanitizer) {
        // The caller made one shared copy (and has let go of it), not a hundred.
        EXPECT_LT(caller_growth, 2 * size_kib) << "KiB";
    }
    // Idle workers let go of the block: its memory goes with the call.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    auto still_mapped = [&] {
        for (pid_t pid : workers) {
            if (maps_memory_named(pid, "crew-argument")) return true;
        }
        return false;
    };
    while (still_mapped() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_FALSE(still_mapped()) << "a worker still maps the call's argument";
    EXPECT_FALSE(maps_memory_named(::getpid(), "crew-argument")) << "the caller still maps it";
}

TEST(LargeArguments, AnArrayIsReadInItsOwnBlock) {
    crew::Array<double> data(counting(std::size_t{2} << 20));
    crew::Parallel parallel({.n_jobs = 2});
    const std::vector<Seen> seen = parallel(crew::range(8) | std::views::transform([&](int i) {
                                                return crew::delayed(look_at_slice)(data, i, 8);
                                            }));
    const std::vector<double> copy(data.begin(), data.end());
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(seen[i].sum, expected_slice(copy, i, 8));
        EXPECT_TRUE(seen[i].in_array) << "copied instead of read in place";
    }
    crew::Parallel threads({.n_jobs = 2, .backend = crew::ParallelBackend::threads});
    const std::vector<Seen> on_threads =
        threads(crew::range(8) | std::views::transform([&](int i) {
                    return crew::delayed(look_at_slice)(data, i, 8);
                }));
    for (int i = 0; i < 8; ++i) EXPECT_EQ(on_threads[i].sum, expected_slice(copy, i, 8));
}

TEST(LargeArguments, SmallSpansTravelInTheMessage) {
    const std::vector<double> data = counting(1000);
    crew::Parallel parallel({.n_jobs = 2});
    const std::vector<Seen> seen = parallel(crew::range(4) | std::views::transform([&](int i) {
                                                return crew::delayed(look_at_slice)(data, i, 4);
                                            }));
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(seen[i].sum, expected_slice(data, i, 4));
        EXPECT_FALSE(seen[i].in_argument_block);
    }
}

TEST(LargeArguments, MaxNbytesSetsWhereSharingBegins) {
    const std::vector<double> data = counting(1000);  // 8,000 bytes
    crew::Parallel parallel({.n_jobs = 2, .max_nbytes = 4096});
    const std::vector<Seen> seen = parallel(crew::range(4) | std::views::transform([&](int i) {
                                                return crew::delayed(look_at_slice)(data, i, 4);
                                            }));
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(seen[i].sum, expected_slice(data, i, 4));
        EXPECT_TRUE(seen[i].in_argument_block);
    }
}

TEST(LargeArguments, GeneratorsAndTheShortcutShareToo) {
    const std::vector<double> data = counting(std::size_t{1} << 20);
    crew::Parallel parallel({.n_jobs = 2});
    int index = 0;
    for (const Seen& one : parallel.generator(crew::range(16) | std::views::transform([&](int i) {
                                                  return crew::delayed(look_at_slice)(data, i, 16);
                                              }))) {
        EXPECT_EQ(one.sum, expected_slice(data, index++, 16));
        EXPECT_TRUE(one.in_argument_block);
    }
    EXPECT_EQ(index, 16);
    // The shortcut's items are the arguments themselves: each vector is its own argument.
    const std::vector<std::vector<double>> parts{counting(300'000), counting(200'000)};
    const std::vector<double> sums = parallel(crew::delayed(sum_of), parts);
    EXPECT_EQ(sums, (std::vector<double>{sum_of(parts[0]), sum_of(parts[1])}));
}

TEST(LargeArguments, APoolTakesASpanParameterToo) {
    const std::vector<double> data = counting(std::size_t{1} << 20);  // 8 MiB: shared
    crew::Pool pool(2);
    EXPECT_EQ(pool.apply(sum_of, data), sum_of(data));
    const std::vector<double> few = counting(10);
    EXPECT_EQ(pool.apply(sum_of, few), 45.0);
}

}  // namespace
