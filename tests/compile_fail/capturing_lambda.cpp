// A lambda with captures cannot be rebuilt in another process: refused at compile time.
#include <crew/process.hpp>

int main() {
    int offset = 1;
    crew::Process p([offset](int x) { return x + offset; }, 41);
}
