// A span views memory of this process only: refused at compile time.
#include <crew/process.hpp>
#include <span>
#include <vector>

void consume(std::span<const int>) {}

int main() {
    std::vector<int> values{1, 2};
    crew::Process p(consume, std::span<const int>(values));
}
