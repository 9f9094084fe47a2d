// An argument type without serialize, not trivially copyable: refused at compile time.
#include <crew/process.hpp>
#include <string>

struct Opaque {
    std::string text;
};

void consume(Opaque) {}

int main() {
    crew::Process p(consume, Opaque{"x"});
}
