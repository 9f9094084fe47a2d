// Executor::map runs nothing until its results are read: a call that drops them is a mistake
// the compiler must report (built with -Werror=unused-result).
#include <crew/crew.hpp>

int write_file(int n) {
    return n;
}

int main() {
    crew::ProcessPoolExecutor executor;
    executor.map(write_file, crew::range(10));
}
