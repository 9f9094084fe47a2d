// A task whose parameter is a non-const reference could only change the worker's copy.
#include <crew/pool.hpp>

void add_one(int& x) {
    ++x;
}

int main() {
    crew::Pool pool(2);
    int x = 1;
    pool.apply(add_one, x);
}
