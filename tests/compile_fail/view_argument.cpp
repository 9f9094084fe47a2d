// A span of elements the function may write views memory of this process only: refused at compile
// time (a std::span<const T> is read in place from shared memory instead: carried_span.hpp).
#include <crew/process.hpp>
#include <span>
#include <vector>

void consume(std::span<int>) {}

int main() {
    std::vector<int> values{1, 2};
    crew::Process p(consume, std::span<int>(values));
}
