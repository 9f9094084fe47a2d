// std::bind_front's result cannot be rebuilt in a worker: crew says so, and what to do instead.
#include <crew/pool.hpp>
#include <functional>

int add(int a, int b) {
    return a + b;
}

int main() {
    crew::Pool pool(2);
    pool.apply(std::bind_front(add, 1), 2);
}
