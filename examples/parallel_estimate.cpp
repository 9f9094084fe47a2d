// crew::estimate on seed 001's workload, the square roots of range(N): whether two workers pay
// for N = 100,000 and N = 5,000,000, measured here before the work is done (seed 001 found the
// serial loop faster for small N).
#include <cmath>
#include <crew/crew.hpp>
#include <iostream>

double root(long x) {
    return std::sqrt(static_cast<double>(x));
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Parallel parallel({.n_jobs = 2});
    for (long n : {100'000L, 5'000'000L}) {
        const crew::Estimate estimate = parallel.estimate(root, crew::range(n));
        std::cout << "N = " << n << ": " << estimate.reason() << std::endl;
    }
}
