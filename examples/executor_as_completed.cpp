// Seed 000, "Advanced Parallel Processing Techniques": ProcessPoolExecutor, submit, as_completed.
//
//     with ProcessPoolExecutor(max_workers=4) as executor:
//         future_tasks = {executor.submit(compute_square, i): i for i in range(10)}
//         for future in as_completed(future_tasks):
//             print(f'{future_tasks[future]}: {future.result()}')
#include <crew/crew.hpp>
#include <iostream>
#include <vector>

int compute_square(int n) {
    return n * n;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::ProcessPoolExecutor executor({.max_workers = 4});
    std::vector<crew::Future<int>> futures;
    for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(compute_square, i));
    for (const crew::Future<int>& future : crew::as_completed(futures)) {
        int input =
            static_cast<int>(std::find(futures.begin(), futures.end(), future) - futures.begin());
        std::cout << input << ": " << future.result() << std::endl;
    }
}
