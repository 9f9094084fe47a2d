// Seed 000, "Getting Started with the Multiprocessing Module": squares of range(10) on a pool of 4.
//
//     with multiprocessing.Pool(processes=4) as pool:
//         results = pool.map(square, range(10))
//     print(results)
#include <crew/crew.hpp>
#include <iostream>

int square(int x) {
    return x * x;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Pool pool(4);
    std::vector<int> results = pool.map(square, crew::range(10));
    std::cout << "[";
    for (std::size_t i = 0; i < results.size(); ++i) std::cout << (i ? ", " : "") << results[i];
    std::cout << "]" << std::endl;
}
