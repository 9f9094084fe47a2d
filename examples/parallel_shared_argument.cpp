// A large argument shared instead of copied (joblib's automatic memmapping): 1,000 calls, each
// summing its slice of one 100 MiB array of doubles, on every core. The function reads the array
// as std::span<const double>: a std::vector is copied once for the whole Parallel call into
// shared memory that every worker reads in place, and a crew::Array, in shared memory from the
// start, is not copied at all. Nothing is left in /dev/shm afterwards.
#include <cmath>
#include <crew/crew.hpp>
#include <cstdio>
#include <numeric>
#include <span>
#include <vector>

constexpr std::size_t count = std::size_t{100} << 20 >> 3;  // 100 MiB of doubles
constexpr int slices = 1000;

double slice_sum(std::span<const double> data, int slice) {
    const std::size_t begin = data.size() * static_cast<std::size_t>(slice) / slices;
    const std::size_t end = data.size() * static_cast<std::size_t>(slice + 1) / slices;
    return std::accumulate(data.begin() + static_cast<std::ptrdiff_t>(begin),
                           data.begin() + static_cast<std::ptrdiff_t>(end), 0.0);
}

// The sum of the slices' sums, from a Parallel call of slice_sum(data, i) for every slice.
template <class Data>
double total_of(crew::Parallel& parallel, const Data& data) {
    const std::vector<double> sums =
        parallel(crew::range(slices) |
                 std::views::transform([&](int i) { return crew::delayed(slice_sum)(data, i); }));
    return std::accumulate(sums.begin(), sums.end(), 0.0);
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    std::vector<double> data(count);
    for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<double>(i % 1000);
    crew::Array<double> shared(count);
    std::copy(data.begin(), data.end(), shared.begin());
    // Each block of 1,000 values sums to 499,500.
    const double expected = 499'500.0 * static_cast<double>(count / 1000) +
                            static_cast<double>((count % 1000) * (count % 1000 - 1) / 2);

    crew::Parallel parallel({.n_jobs = -1});
    const double from_vector = total_of(parallel, data);
    const double from_array = total_of(parallel, shared);
    const bool right = from_vector == expected && from_array == expected;
    std::printf("%d slices of %zu MiB: %.0f from a std::vector, %.0f from a crew::Array (%s)\n",
                slices, count * sizeof(double) >> 20, from_vector, from_array,
                right ? "both right" : "WRONG");
    return right ? 0 : 1;
}
