// A 64 MiB std::vector<char> to a pool worker and back, against a bare baseline: a forked
// process that copies the same 64 MiB from shared memory into a fresh buffer and back, the
// parent then copying the answer into a fresh buffer of its own (issue 3, benchmark 3).
// Usage: crew_bandwidth [REPEATS]   (prints median bandwidths, both directions counted)
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../timing.hpp"

namespace {

constexpr std::size_t kBytes = std::size_t{64} << 20;

std::vector<char> echo(std::vector<char> bytes) {
    return bytes;
}

double gigabytes_per_second(double seconds) {
    return 2.0 * static_cast<double>(kBytes) / seconds / 1e9;
}

void read_byte(int fd) {
    char byte;
    if (read(fd, &byte, 1) != 1) std::abort();
}
void write_byte(int fd) {
    if (write(fd, "x", 1) != 1) std::abort();
}

// The bare baseline's process: waits for a go, copies shared memory into a fresh buffer and back.
void bare_child(char* shared, int go, int done) {
    for (char byte; read(go, &byte, 1) == 1;) {
        char* fresh = static_cast<char*>(std::malloc(kBytes));
        std::memcpy(fresh, shared, kBytes);
        std::memcpy(shared, fresh, kBytes);
        std::free(fresh);
        write_byte(done);
    }
    _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    std::vector<char> data(kBytes);
    for (std::size_t i = 0; i < kBytes; ++i) data[i] = static_cast<char>(i * 131);

    // The baseline's shared memory is mapped and touched once, before the child is forked.
    auto* shared = static_cast<char*>(
        mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (shared == MAP_FAILED) std::abort();
    std::memset(shared, 0, kBytes);
    int to_child[2], to_parent[2];
    if (pipe(to_child) != 0 || pipe(to_parent) != 0) std::abort();
    pid_t child = fork();
    if (child == 0) {
        close(to_child[1]);
        close(to_parent[0]);
        bare_child(shared, to_child[0], to_parent[1]);
    }
    close(to_child[0]);
    close(to_parent[1]);

    crew::Pool pool(1);
    bool same = true;
    std::vector<double> bare_times, crew_times;
    for (int r = 0; r < repeats; ++r) {
        bare_times.push_back(seconds([&] {
            std::memcpy(shared, data.data(), kBytes);
            write_byte(to_child[1]);
            read_byte(to_parent[0]);
            std::vector<char> back(shared, shared + kBytes);
            same = same && back == data;
        }));
        crew_times.push_back(seconds([&] {
            std::vector<char> back = pool.apply(echo, data);
            same = same && back == data;
        }));
    }
    close(to_child[1]);
    waitpid(child, nullptr, 0);
    close(to_parent[0]);
    munmap(shared, kBytes);

    double bare = gigabytes_per_second(summarize(bare_times).median);
    double crew_rate = gigabytes_per_second(summarize(crew_times).median);
    std::printf("bare baseline          %6.3f GB/s\n", bare);
    std::printf("crew Pool.apply(echo)  %6.3f GB/s  (%.0f%% of the baseline; goal >= 50%%)\n",
                crew_rate, 100 * crew_rate / bare);
    std::printf("results identical: %s\n", same ? "yes" : "NO");
    return same ? 0 : 1;
}
