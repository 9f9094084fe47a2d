// A pool, like a Process, refuses a lambda with captures at compile time.
#include <crew/pool.hpp>
#include <crew/range.hpp>

int main() {
    crew::Pool pool(2);
    int offset = 1;
    pool.map([offset](int x) { return x + offset; }, crew::range(10));
}
