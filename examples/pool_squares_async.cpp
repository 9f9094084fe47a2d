// Seed 002, "Pool class": map, map_async with AsyncResult.get, and apply_async.
//
//     pool = multiprocessing.Pool(processes=4)
//     outputs = pool.map(square, inputs)
//     outputs_async = pool.map_async(square, inputs); outputs = outputs_async.get()
//     result_async = [pool.apply_async(square, args=(i,)) for i in range(10)]
//     results = [r.get() for r in result_async]
#include <crew/crew.hpp>
#include <iostream>
#include <string>
#include <vector>

int square(int x) {
    return x * x;
}

std::string list(const std::vector<int>& values) {
    std::string text = "[";
    for (std::size_t i = 0; i < values.size(); ++i) {
        text += (i ? ", " : "") + std::to_string(values[i]);
    }
    return text + "]";
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Pool pool(4);
    std::vector<int> inputs{0, 1, 2, 3, 4};
    std::cout << "Input: " << list(inputs) << "\n";
    std::cout << "Output: " << list(pool.map(square, inputs)) << "\n";
    crew::AsyncResult<std::vector<int>> outputs_async = pool.map_async(square, inputs);
    std::cout << "Output (map_async): " << list(outputs_async.get()) << "\n";
    std::vector<crew::AsyncResult<int>> result_async;
    for (int i = 0; i < 10; ++i) result_async.push_back(pool.apply_async(square, i));
    std::vector<int> results;
    for (auto& r : result_async) results.push_back(r.get());
    std::cout << "Output (apply_async): " << list(results) << std::endl;
}
