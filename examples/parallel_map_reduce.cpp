// crew::map_reduce: the sum of the squares of 10^8 numbers, x / 10^8 for x = 0, 1, ..., 10^8 - 1,
// on every core, each worker summing its chunks as it goes, so that neither the numbers nor their
// squares are ever held in memory. The closed form checks it.
#include <cmath>
#include <crew/crew.hpp>
#include <cstdio>

constexpr long n = 100'000'000;

double square(long x) {
    const double t = static_cast<double>(x) / n;
    return t * t;
}
double plus(double a, double b) {
    return a + b;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const double sum = crew::map_reduce(square, plus, crew::range(n), 0.0, {.n_jobs = -1});
    // The sum of x^2 for x < n is (n - 1) n (2n - 1) / 6; divided by n^2 for the scaling.
    const double expected = (n - 1.0) * (2.0 * n - 1.0) / (6.0 * n);
    const bool right = std::abs(sum - expected) < 1e-9 * expected;
    std::printf("sum of %ld squares: %.1f (%s)\n", n, sum,
                right ? "as the closed form says" : "WRONG");
    return right ? 0 : 1;
}
