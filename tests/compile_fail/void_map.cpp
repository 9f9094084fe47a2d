// map collects results: a function that returns nothing is refused, with crew's message alone.
#include <crew/pool.hpp>
#include <vector>

void log_item(int) {}

int main() {
    crew::Pool pool(2);
    std::vector<int> items{1, 2, 3};
    pool.map(log_item, items);
}
