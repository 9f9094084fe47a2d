// joblib's form must tell the delayed calls of two function objects apart: one with state and no
// operator== is refused, with crew's message alone.
#include <crew/parallel.hpp>
#include <ranges>
#include <vector>

struct Scale {
    int factor = 1;
    int operator()(int x) const { return x * factor; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(factor);
    }
};

int main() {
    crew::Parallel parallel({.n_jobs = 1});
    std::vector<int> items{1, 2, 3};
    parallel(items | std::views::transform([](int x) { return crew::delayed(Scale{2})(x); }));
}
