// Every interface that sends a call refuses a lambda with captures with crew's message alone:
// built once for each INTERFACE (see CMakeLists.txt).
#include <crew/crew.hpp>
#include <ranges>
#include <vector>

int main() {
    crew::Pool pool(2);
    crew::ProcessPoolExecutor executor({.max_workers = 2});
    int offset = 1;
    auto add_offset = [offset](int x) { return x + offset; };
    std::vector<int> items{1, 2, 3};
    std::vector<std::tuple<int>> tuples{{1}, {2}};
#if INTERFACE == 0
    pool.apply(add_offset, 1);
#elif INTERFACE == 1
    pool.apply_async(add_offset, 1);
#elif INTERFACE == 2
    pool.map_async(add_offset, items);
#elif INTERFACE == 3
    for (int x : pool.imap(add_offset, items)) (void)x;
#elif INTERFACE == 4
    pool.starmap(add_offset, tuples);
#elif INTERFACE == 5
    executor.submit(add_offset, 1);
#elif INTERFACE == 6
    for (int x : executor.map(add_offset, items)) (void)x;
#elif INTERFACE == 7
    crew::Process process(add_offset, 1);
#elif INTERFACE == 8
    pool.imap_unordered(add_offset, items, 4);
#elif INTERFACE == 9
    crew::Parallel parallel({.n_jobs = 2});
    parallel(crew::delayed(add_offset), items);
#elif INTERFACE == 10
    crew::Parallel parallel({.n_jobs = 2});
    parallel(items | std::views::transform([&](int x) { return crew::delayed(add_offset)(x); }));
#endif
}
