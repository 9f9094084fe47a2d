// A pointer means nothing in another process: refused at compile time.
#include <crew/process.hpp>

void consume(int*) {}

int main() {
    int value = 1;
    crew::Process p(consume, &value);
}
