// Seed 001, "A simple example of multiprocessing in Python": a child process bubble-sorts an
// array it was given and prints it.
//
//     p = Process(target=bubble_sort, args=([1,9,4,5,2,6,8,4],))
#include <crew/crew.hpp>
#include <iostream>
#include <utility>
#include <vector>

void bubble_sort(std::vector<int> array) {
    bool check = true;
    while (check) {
        check = false;
        for (std::size_t i = 0; i + 1 < array.size(); ++i) {
            if (array[i] > array[i + 1]) {
                check = true;
                std::swap(array[i], array[i + 1]);
            }
        }
    }
    std::cout << "Array sorted:  [";
    for (std::size_t i = 0; i < array.size(); ++i) std::cout << (i ? ", " : "") << array[i];
    std::cout << "]" << std::endl;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Process p(bubble_sort, std::vector<int>{1, 9, 4, 5, 2, 6, 8, 4});
    p.start();
    p.join();
}
