// crew::Parallel and crew::delayed (joblib's Parallel(n_jobs)(delayed(f)(x) for x in xs)):
// results in input order on every backend and n_jobs, both call forms, zipped ranges, n_jobs as
// joblib reads it, one worker set kept across calls, a failure's own type.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <crew/crew.hpp>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

namespace {

double root(int x) {
    return std::sqrt(x);
}
int add(int a, int b) {
    return a + b;
}
int negate(int x) {
    return -x;
}
int worker_pid(int) {
    return static_cast<int>(::getpid());
}
int fail_at_three(int x) {
    if (x == 3) throw std::invalid_argument("three is not allowed");
    return x;
}

std::vector<double> roots_of_squares(int count) {
    std::vector<double> expected;
    for (int i = 0; i < count; ++i) expected.push_back(i);
    return expected;
}

struct Setting {
    crew::ParallelBackend backend;
    int n_jobs;
    crew::StartMethod start_method;
};

std::string name_of(const Setting& setting) {
    const char* backend = setting.backend == crew::ParallelBackend::processes ? "processes"
                          : setting.backend == crew::ParallelBackend::threads ? "threads"
                                                                              : "serial";
    const std::string jobs = setting.n_jobs < 0 ? "minus" + std::to_string(-setting.n_jobs)
                                                : std::to_string(setting.n_jobs);
    return std::string(backend) + "_" + jobs + "_" +
           std::string(crew::to_string(setting.start_method));
}

class ParallelTest : public ::testing::TestWithParam<Setting> {
  protected:
    void SetUp() override { crew::set_start_method(GetParam().start_method); }
    crew::ParallelOptions options() const {
        return {.n_jobs = GetParam().n_jobs, .backend = GetParam().backend};
    }
};

TEST_P(ParallelTest, JoblibsFormGivesTheResultsInInputOrder) {
    crew::Parallel parallel(options());
    const std::vector<double> roots = parallel(
        crew::range(10) | std::views::transform([](int i) { return crew::delayed(root)(i * i); }));
    EXPECT_EQ(roots, roots_of_squares(10));
}

TEST_P(ParallelTest, TheShortcutZipsRangesUpToTheShortest) {
    crew::Parallel parallel(options());
    const std::vector<int> squares{0, 1, 4, 9, 16, 25};
    EXPECT_EQ(parallel(crew::delayed(root), squares), roots_of_squares(6));
    const std::vector<int> more{10, 20, 30, 40};
    EXPECT_EQ(parallel(crew::delayed(add), squares, more), (std::vector<int>{10, 21, 34, 49}));
    const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
    EXPECT_EQ(parallel(pairs | std::views::transform([](auto pair) {
                           return crew::delayed(add)(std::get<0>(pair), std::get<1>(pair));
                       })),
              (std::vector<int>{3, 7}));
}

TEST_P(ParallelTest, ManyCallsComeBackInOrder) {
    crew::Parallel parallel(options());
    const std::vector<int> results = parallel(crew::delayed(negate), crew::range(10'000));
    ASSERT_EQ(results.size(), 10'000u);
    for (int i = 0; i < 10'000; ++i) ASSERT_EQ(results[static_cast<std::size_t>(i)], -i);
    EXPECT_TRUE(parallel(crew::delayed(negate), std::vector<int>{}).empty());
}

TEST_P(ParallelTest, AFailedCallThrowsItsOwnTypeAndTheNextCallWorks) {
    crew::Parallel parallel(options());
    try {
        (void)parallel(crew::delayed(fail_at_three), crew::range(8));
        ADD_FAILURE() << "a call that throws must fail the Parallel call";
    } catch (const std::invalid_argument& error) {
        EXPECT_NE(std::string(error.what()).find("three is not allowed"), std::string::npos);
    }
    EXPECT_EQ(parallel(crew::delayed(negate), crew::range(3)), (std::vector<int>{0, -1, -2}));
}

TEST_P(ParallelTest, DelayedCallsOfAnotherFunctionAreRefused) {
    crew::Parallel parallel(options());
    std::vector<crew::DelayedCall<int (*)(int), int>> calls{crew::delayed(negate)(1),
                                                            crew::delayed(worker_pid)(2)};
    EXPECT_THROW((void)parallel(calls), crew::Error);
}

const Setting settings[] = {
    {crew::ParallelBackend::processes, 2, crew::StartMethod::forkserver},
    {crew::ParallelBackend::processes, 2, crew::StartMethod::fork},
    {crew::ParallelBackend::processes, 2, crew::StartMethod::spawn},
    {crew::ParallelBackend::processes, -1, crew::StartMethod::forkserver},
    {crew::ParallelBackend::processes, -2, crew::StartMethod::forkserver},
    {crew::ParallelBackend::processes, 1, crew::StartMethod::forkserver},
    {crew::ParallelBackend::threads, 2, crew::StartMethod::forkserver},
    {crew::ParallelBackend::threads, -1, crew::StartMethod::forkserver},
    {crew::ParallelBackend::serial, 2, crew::StartMethod::forkserver},
};
INSTANTIATE_TEST_SUITE_P(EveryBackend, ParallelTest, ::testing::ValuesIn(settings),
                         [](const auto& info) { return name_of(info.param); });

// A function object with state, comparable: joblib's form tells calls of two of them apart.
struct Scale {
    int factor = 1;
    int operator()(int x) const { return x * factor; }
    bool operator==(const Scale&) const = default;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(factor);
    }
};

TEST(ParallelJobs, DelayedCallsOfAComparableFunctionObjectAreToldApart) {
    crew::Parallel parallel({.n_jobs = 2});
    EXPECT_EQ(parallel(crew::range(4) |
                       std::views::transform([](int i) { return crew::delayed(Scale{3})(i); })),
              (std::vector<int>{0, 3, 6, 9}));
    EXPECT_THROW((void)parallel(crew::range(4) | std::views::transform([](int i) {
                                    return crew::delayed(Scale{i % 2 + 1})(i);
                                })),
                 crew::Error);
    EXPECT_EQ(parallel(crew::delayed(Scale{5}), std::vector<int>{1, 2}), (std::vector<int>{5, 10}));
}

TEST(ParallelJobs, NJobsIsReadAsJoblibReadsIt) {
    const int cores = crew::cpu_count();
    EXPECT_EQ(crew::Parallel().n_jobs(), 1);  // joblib's n_jobs=None
    EXPECT_EQ(crew::Parallel({.n_jobs = 3}).n_jobs(), 3);
    EXPECT_EQ(crew::Parallel({.n_jobs = -1}).n_jobs(), cores);
    EXPECT_EQ(crew::Parallel({.n_jobs = -2}).n_jobs(), std::max(cores - 1, 1));
    EXPECT_EQ(crew::Parallel({.n_jobs = -100}).n_jobs(), 1);
    try {
        crew::Parallel parallel({.n_jobs = 0});
        ADD_FAILURE() << "n_jobs == 0 must be refused";
    } catch (const crew::Error& error) {
        EXPECT_NE(std::string(error.what()).find("n_jobs == 0"), std::string::npos);
    }
}

TEST(ParallelJobs, OneJobRunsInTheCallingProcess) {
    crew::Parallel parallel({.n_jobs = 1});
    const std::vector<int> pids = parallel(crew::delayed(worker_pid), crew::range(4));
    EXPECT_EQ(std::set<int>(pids.begin(), pids.end()), std::set<int>{static_cast<int>(::getpid())});
}

TEST(ParallelJobs, OneParallelKeepsItsWorkersForItsNextCalls) {
    crew::Parallel parallel({.n_jobs = 2, .batch_size = 1});
    const std::vector<int> first = parallel(crew::delayed(worker_pid), crew::range(200));
    const std::vector<int> second = parallel(crew::delayed(worker_pid), crew::range(200));
    const std::set<int> first_pids(first.begin(), first.end());
    const std::set<int> second_pids(second.begin(), second.end());
    EXPECT_FALSE(first_pids.contains(static_cast<int>(::getpid())));
    EXPECT_LE(first_pids.size(), 2u);
    for (int pid : second_pids) EXPECT_TRUE(first_pids.contains(pid)) << pid;
}

}  // namespace
