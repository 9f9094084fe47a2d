// One large argument shared by many calls (joblib's automatic memmapping; python_shared_argument.py
// times joblib on the same work): 1,000 calls, each summing its slice of one 100 MiB array of
// doubles that every call is given whole, on 2 workers. crew::Parallel's processes backend reads
// it in place in shared memory: a std::vector is copied there once a call, a crew::Array is
// there already. The threads backend, whose calls read the caller's memory, is the mark to meet;
// a serial loop is beside it.
// Usage: crew_shared_argument [REPEATS]   (prints medians)
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <ranges>
#include <span>
#include <vector>

#include "../timing.hpp"

constexpr int calls = 1000;

double slice_sum(std::span<const double> data, int slice) {
    const std::size_t length = data.size() / calls;
    const auto part = data.subspan(static_cast<std::size_t>(slice) * length, length);
    return std::accumulate(part.begin(), part.end(), 0.0);
}

template <class Data>
double run(crew::Parallel& parallel, const Data& data) {
    const std::vector<double> sums =
        parallel(crew::range(calls) |
                 std::views::transform([&](int i) { return crew::delayed(slice_sum)(data, i); }));
    return std::accumulate(sums.begin(), sums.end(), 0.0);
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    constexpr std::size_t count = (std::size_t{100} << 20) / sizeof(double);
    std::vector<double> vector(count);
    std::iota(vector.begin(), vector.end(), 0.0);
    const crew::Array<double> array(vector);
    double expected = 0;  // the slices leave out the last count % calls elements
    for (int i = 0; i < calls; ++i) expected += slice_sum(vector, i);

    crew::Parallel threads({.n_jobs = 2, .backend = crew::ParallelBackend::threads});
    crew::Parallel processes({.n_jobs = 2});
    std::vector<double> serial_times, thread_times, vector_times, array_times;
    bool right = true;
    (void)run(processes, array);  // starts the workers, as joblib's first call does
    for (int r = 0; r < repeats; ++r) {
        serial_times.push_back(seconds([&] {
            double total = 0;
            for (int i = 0; i < calls; ++i) total += slice_sum(vector, i);
            right = right && total == expected;
        }));
        thread_times.push_back(seconds([&] { right = right && run(threads, vector) == expected; }));
        vector_times.push_back(
            seconds([&] { right = right && run(processes, vector) == expected; }));
        array_times.push_back(seconds([&] { right = right && run(processes, array) == expected; }));
    }
    if (!right) {
        std::fprintf(stderr, "a sum came out wrong\n");
        return 1;
    }
    const double threads_median = summarize(thread_times).median;
    auto line = [&](const char* what, const std::vector<double>& times) {
        const double median = summarize(times).median;
        std::printf("crew %-40s %8.1f ms  %5.2fx the threads backend's time\n", what, median * 1e3,
                    median / threads_median);
    };
    line("serial loop", serial_times);
    line("Parallel(threads) std::vector", thread_times);
    line("Parallel(processes) std::vector", vector_times);
    line("Parallel(processes) crew::Array", array_times);
}
