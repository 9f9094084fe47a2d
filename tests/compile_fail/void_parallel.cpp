// Parallel collects results: a function that returns nothing is refused, with crew's message
// alone, whatever the backend.
#include <crew/parallel.hpp>
#include <vector>

void log_item(int) {}

int main() {
    crew::Parallel parallel({.n_jobs = 1});
    std::vector<int> items{1, 2, 3};
    parallel(crew::delayed(log_item), items);
}
