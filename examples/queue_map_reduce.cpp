// Map-reduce over queues: worker processes take numbers from one queue (map: square them) and
// put the results on another, which the parent adds up (reduce). In Python:
//
//     def mapper(tasks, results):
//         while (n := tasks.get()) is not None:
//             results.put(n * n)
//
//     tasks, results = Queue(), Queue()
//     workers = [Process(target=mapper, args=(tasks, results)) for _ in range(4)]
//     for w in workers: w.start()
//     for n in range(1, 101): tasks.put(n)
//     for _ in workers: tasks.put(None)
//     total = sum(results.get() for _ in range(100))
//     for w in workers: w.join()
//     print('sum of squares of 1..100:', total)
#include <crew/crew.hpp>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

void mapper(crew::Queue<std::optional<long>> tasks, crew::Queue<long> results) {
    while (std::optional<long> n = tasks.get()) results.put(*n * *n);
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Queue<std::optional<long>> tasks;
    crew::Queue<long> results;
    std::vector<std::unique_ptr<crew::Process>> workers;
    for (int i = 0; i < 4; ++i) {
        workers.push_back(std::make_unique<crew::Process>(mapper, tasks, results));
        workers.back()->start();
    }
    for (long n = 1; n <= 100; ++n) tasks.put(n);
    for (std::size_t i = 0; i < workers.size(); ++i) tasks.put(std::nullopt);  // one stop each
    long total = 0;
    for (int i = 0; i < 100; ++i) total += results.get();
    for (auto& worker : workers) worker->join();
    std::cout << "sum of squares of 1..100: " << total << std::endl;
}
