// Seed 000, "Advanced Parallel Processing Techniques": ProcessPoolExecutor, submit, as_completed.
//
//     with ProcessPoolExecutor(max_workers=4) as executor:
//         future_tasks = {executor.submit(compute_square, i): i for i in range(10)}
//         for future in as_completed(future_tasks):
//             print(f'{future_tasks[future]}: {future.result()}')
#include <crew/crew.hpp>
#include <iostream>
#include <unordered_map>

int compute_square(int n) {
    return n * n;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::ProcessPoolExecutor executor({.max_workers = 4});
    std::unordered_map<crew::Future<int>, int> future_tasks;
    for (int i = 0; i < 10; ++i) future_tasks[executor.submit(compute_square, i)] = i;
    for (const crew::Future<int>& future : crew::as_completed(future_tasks)) {
        std::cout << future_tasks.at(future) << ": " << future.result() << std::endl;
    }
}
