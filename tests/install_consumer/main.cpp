#include <crew/crew.hpp>
#include <cstdlib>
#include <iostream>

int square(int x) {
    std::exit(x * x);
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Process p(square, 7);
    p.start();
    p.join();
    std::cout << "consumer: " << p.exitcode().value_or(-1) << std::endl;
}
