// Seed 001's benchmark: the square roots of range(10, N) with Pool.map against a serial loop,
// both giving a std::vector<double>, at N = 5,000,000 and N = 100,000; then the same with a
// heavier function (about 2 us of arithmetic an item) against two bare forked processes that
// split the work, the ceiling for 2 processes here (issue 3, benchmark 5).
// Usage: crew_sqrt [REPEATS]   (prints median times)
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <crew/crew.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../timing.hpp"

namespace {

double root(long x) {
    return std::sqrt(static_cast<double>(x));
}

// About 2 us an item (issue 3): a chain of dependent square roots and additions the compiler
// cannot fold (1.0 us for 200 links on this machine on 2026-12-01).
double heavy(long x) {
    double value = static_cast<double>(x);
    for (int i = 0; i < 400; ++i) value = std::sqrt(value + static_cast<double>(i));
    return value;
}

template <class F>
std::vector<double> serial(F function, long n, bool huge_pages = false) {
    std::vector<double> results;
    results.reserve(static_cast<std::size_t>(n - 10));
    if (huge_pages) {
        // As crew does for the vectors it fills (detail::prefer_huge_pages): for a fair look.
        const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
        auto begin = (reinterpret_cast<std::uintptr_t>(results.data()) + page - 1) & ~(page - 1);
        auto end =
            (reinterpret_cast<std::uintptr_t>(results.data() + results.capacity())) & ~(page - 1);
        if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    }
    for (long x = 10; x < n; ++x) results.push_back(function(x));
    return results;
}

// Two forked processes each compute half into shared memory; the parent gathers a vector.
template <class F>
std::vector<double> two_bare_processes(F function, long n) {
    const std::size_t count = static_cast<std::size_t>(n - 10);
    void* shared = mmap(nullptr, count * sizeof(double), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) std::abort();
    auto* out = static_cast<double*>(shared);
    const long half = 10 + static_cast<long>(count / 2);
    pid_t children[2];
    for (int c = 0; c < 2; ++c) {
        children[c] = fork();
        if (children[c] == 0) {
            for (long x = c == 0 ? 10 : half; x < (c == 0 ? half : n); ++x)
                out[x - 10] = function(x);
            _exit(0);
        }
    }
    for (pid_t child : children) waitpid(child, nullptr, 0);
    std::vector<double> results(out, out + count);
    munmap(shared, count * sizeof(double));
    return results;
}

}  // namespace

int main(int argc, char** argv) {
    crew::init(argc, argv);
    // Memory for the 800 KB vectors of N = 100,000 comes back warm to both sides: glibc would
    // otherwise give each vector fresh pages or not depending on what else the heap holds (a
    // first touch costs about 17 µs a page here, 3 ms a vector). 40 MB vectors stay mmapped
    // and fresh for both, as before (32 MiB is glibc's own largest dynamic threshold).
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    crew::Pool pool(2);
    crew::Parallel parallel({.n_jobs = 2});
    (void)parallel(crew::delayed(root), crew::range(10L, 1000L));  // its workers up, as the pool's
    bool same = true;

    for (long n : {5'000'000L, 100'000L}) {
        std::vector<double> serial_times, huge_times, pool_times, parallel_times;
        for (int r = 0; r < repeats; ++r) {
            std::vector<double> expected, huge, got, through_parallel;
            serial_times.push_back(seconds([&] { expected = serial(root, n); }));
            huge_times.push_back(seconds([&] { huge = serial(root, n, true); }));
            pool_times.push_back(seconds([&] { got = pool.map(root, crew::range(10L, n)); }));
            parallel_times.push_back(seconds(
                [&] { through_parallel = parallel(crew::delayed(root), crew::range(10L, n)); }));
            same = same && got == expected && huge == expected && through_parallel == expected;
        }
        double s = summarize(serial_times).median, h = summarize(huge_times).median,
               p = summarize(pool_times).median, j = summarize(parallel_times).median;
        std::printf(
            "sqrt N=%-9ld serial %8.4f s  crew Pool(2).map %8.4f s  = %.2fx serial  "
            "(serial into huge pages: %.4f s)\n",
            n, s, p, p / s, h);
        std::printf(
            "sqrt N=%-9ld crew Parallel(n_jobs=2) %9.1f us, Pool::map %9.1f us: %.2fx (goal "
            "<= 1.10x)\n",
            n, 1e6 * j, 1e6 * p, j / p);
    }

    constexpr long kHeavy = 200'000;
    std::vector<double> serial_times, pool_times, bare_times;
    for (int r = 0; r < repeats; ++r) {
        std::vector<double> expected, got, bare;
        serial_times.push_back(seconds([&] { expected = serial(heavy, kHeavy); }));
        pool_times.push_back(seconds([&] { got = pool.map(heavy, crew::range(10L, kHeavy)); }));
        bare_times.push_back(seconds([&] { bare = two_bare_processes(heavy, kHeavy); }));
        same = same && got == expected && bare == expected;
    }
    double s = summarize(serial_times).median, p = summarize(pool_times).median,
           b = summarize(bare_times).median;
    std::printf(
        "heavy (%.2f us an item, N=%ld): serial %.3f s  crew %.3f s (speedup %.3f)  "
        "2 bare processes %.3f s (speedup %.3f)\n",
        1e6 * s / kHeavy, kHeavy, s, p, s / p, b, s / b);
    std::printf("heavy: crew speedup / bare speedup = %.1f%% (goal >= 90%%)\n",
                100 * (s / p) / (s / b));
    std::printf("results identical: %s\n", same ? "yes" : "NO");
    return same ? 0 : 1;
}
