// joblib's first example, the twin of
//
//     from math import sqrt
//     from joblib import Parallel, delayed
//     print(Parallel(n_jobs=2)(delayed(sqrt)(i ** 2) for i in range(10)))
//
// and the same through the shortcut, crew's Parallel(delayed(f), items).
#include <cmath>
#include <crew/crew.hpp>
#include <iostream>
#include <ranges>
#include <vector>

double root(int x) {
    return std::sqrt(x);
}

void print(const std::vector<double>& values) {
    std::cout << "[";
    for (std::size_t i = 0; i < values.size(); ++i) std::cout << (i ? ", " : "") << values[i];
    std::cout << "]" << std::endl;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Parallel parallel({.n_jobs = 2});
    print(parallel(crew::range(10) |
                   std::views::transform([](int i) { return crew::delayed(root)(i * i); })));
    std::vector<int> squares;
    for (int i = 0; i < 10; ++i) squares.push_back(i * i);
    print(parallel(crew::delayed(root), squares));
}
