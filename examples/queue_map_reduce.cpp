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
//
// `queue_map_reduce N` does it for 1..N: the parent puts all N before it reads a result, which
// needs a put() that never waits on an unbounded queue, as in Python.
#include <crew/crew.hpp>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

void mapper(crew::Queue<std::optional<long>> tasks, crew::Queue<long> results) {
    while (std::optional<long> n = tasks.get()) results.put(*n * *n);
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    const long count = argc > 1 ? std::stol(argv[1]) : 100;
    crew::Queue<std::optional<long>> tasks;
    crew::Queue<long> results;
    std::vector<std::unique_ptr<crew::Process>> workers;
    for (int i = 0; i < 4; ++i) {
        workers.push_back(std::make_unique<crew::Process>(mapper, tasks, results));
        workers.back()->start();
    }
    for (long n = 1; n <= count; ++n) tasks.put(n);
    for (std::size_t i = 0; i < workers.size(); ++i) tasks.put(std::nullopt);  // one stop each
    long total = 0;
    for (long i = 0; i < count; ++i) total += results.get();
    for (auto& worker : workers) worker->join();
    std::cout << "sum of squares of 1.." << count << ": " << total << std::endl;
}
