// The progress bar of map, imap, starmap and Executor::map (.progress = true), after tqdm's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <crew/crew.hpp>
#include <crew/detail/progress.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using crew::detail::Progress;

int square(int x) {
    return x * x;
}

// A pipe whose read end is drained into a string.
class Pipe {
  public:
    Pipe() { EXPECT_EQ(pipe(fds_), 0); }
    ~Pipe() {
        close(fds_[0]);
        if (fds_[1] >= 0) close(fds_[1]);
    }
    int write_end() const { return fds_[1]; }
    std::string drain() {
        close(fds_[1]);
        fds_[1] = -1;
        std::string text;
        char buffer[4096];
        for (ssize_t n; (n = read(fds_[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
        return text;
    }

  private:
    int fds_[2] = {-1, -1};
};

std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t count = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
    return count;
}

TEST(Progress, OnATerminalRedrawsOneLineWithBarCountTimesAndRate) {
    Pipe pipe;
    {
        Progress progress("map", 10, {pipe.write_end(), true, 0ns});
        progress.advance(5);
        progress.advance(5);
    }
    std::string text = pipe.drain();
    EXPECT_EQ(text.front(), '\r') << text;
    EXPECT_NE(text.find("map:  50%|"), std::string::npos) << text;
    EXPECT_NE(text.find(" 5/10 ["), std::string::npos) << text;
    EXPECT_NE(text.find("map: 100%|"), std::string::npos) << text;
    EXPECT_NE(text.find(" 10/10 [00:00<00:00, "), std::string::npos) << text;
    EXPECT_NE(text.find("/s]"), std::string::npos) << text;
    EXPECT_EQ(count_of(text, "\n"), 1u) << "one line, ended once: " << text;
    EXPECT_EQ(text.back(), '\n');
}

// tqdm's rules: the percentage rounds down (995 of 1000 is not done), and the line is as wide
// as the terminal, one column spare.
TEST(Progress, RoundsDownAndFillsTheTerminalsWidth) {
    Pipe pipe;
    {
        Progress progress("map", 1000, {pipe.write_end(), true, 0ns, 60});
        progress.advance(995);
    }
    std::string text = pipe.drain();
    EXPECT_NE(text.find("map:  99%|"), std::string::npos) << text;
    EXPECT_EQ(text.find("100%"), std::string::npos) << text;
    std::size_t lines = 0;
    for (auto start = text.find('\r'); start != std::string::npos;
         start = text.find('\r', start + 1)) {
        const auto end = text.find("\x1b[K", start);
        ASSERT_NE(end, std::string::npos) << text;
        std::string line = text.substr(start + 1, end - start - 1);
        std::size_t columns = 0;
        for (char c : line) columns += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        EXPECT_EQ(columns, 59u) << line;
        ++lines;
    }
    EXPECT_GE(lines, 2u) << text;
}

TEST(Progress, ElsewhereWritesPlainLines) {
    Pipe pipe;
    {
        Progress progress("imap", 4, {pipe.write_end(), false, 0ns});
        progress.advance(1);
        progress.advance(1);
        progress.advance(2);
    }
    std::string text = pipe.drain();
    EXPECT_EQ(count_of(text, "\r"), 0u) << text;
    EXPECT_NE(text.find("imap: 1/4 (25%) elapsed 00:00 remaining "), std::string::npos) << text;
    EXPECT_NE(text.find("imap: 4/4 (100%) elapsed 00:00 remaining 00:00 "), std::string::npos)
        << text;
    EXPECT_EQ(count_of(text, "imap: 4/4"), 1u) << "the last state once: " << text;
}

TEST(Progress, WithoutATotalCountsAndGivesTheRate) {
    Pipe pipe;
    {
        Progress progress("imap", std::nullopt, {pipe.write_end(), false, 1h});
        for (int i = 0; i < 7; ++i) progress.advance(1);
    }
    std::string text = pipe.drain();
    EXPECT_EQ(text.rfind("imap: 7 elapsed 00:00 ", 0), 0u) << "only the last line: " << text;
    EXPECT_NE(text.find("/s\n"), std::string::npos) << text;
}

// End to end, with stderr redirected to a file (not a terminal): plain lines.
TEST(Progress, MapImapAndExecutorMapReportOnStderr) {
    crew::Pool pool(2);
    ::testing::internal::CaptureStderr();
    auto squares = pool.map(square, crew::range(1000), {.progress = true});
    int sum = 0;
    for (int s : pool.imap(square, crew::range(100), {.chunksize = 10, .progress = true})) sum += s;
    crew::ThreadPoolExecutor threads({.max_workers = 2});
    for (int s : threads.map(square, crew::range(50), {.progress = true})) sum += s;
    crew::ProcessPoolExecutor processes({.max_workers = 2});
    for (int s : processes.map(square, crew::range(30), {.progress = true, .label = "squares"})) {
        sum += s;
    }
    auto quiet = pool.map(square, crew::range(10));
    std::string text = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(squares[999], 999 * 999);
    EXPECT_EQ(sum, 328350 + 40425 + 8555);
    EXPECT_NE(text.find("map: 1000/1000 (100%)"), std::string::npos) << text;
    EXPECT_NE(text.find("imap: 100/100 (100%)"), std::string::npos) << text;
    EXPECT_NE(text.find("map: 50/50 (100%)"), std::string::npos) << text;
    EXPECT_NE(text.find("squares: 30/30 (100%)"), std::string::npos) << "its own label: " << text;
    EXPECT_EQ(count_of(text, "\n"), 4u) << "off by default: " << text;
}

int pid_after_a_nap(int) {
    std::this_thread::sleep_for(2ms);
    return static_cast<int>(::getpid());
}

// With a bar, map's automatic chunks hold at most a hundredth of the input (3 of 200 items), so
// the bar moves from the first chunk on; without one, a chunk is an eighth of it (25), as in
// Python. Seen from the results: the longest run of neighbouring items one worker ran.
TEST(Progress, AutomaticChunksLetTheBarMoveFromTheStart) {
    crew::Pool pool(2);
    auto longest_run = [](const std::vector<int>& pids) {
        std::size_t longest = 0;
        for (std::size_t i = 0, run = 0; i < pids.size(); ++i) {
            run = i > 0 && pids[i] == pids[i - 1] ? run + 1 : 1;
            longest = std::max(longest, run);
        }
        return longest;
    };
    ::testing::internal::CaptureStderr();
    const auto with_bar = pool.map(pid_after_a_nap, crew::range(200), {.progress = true});
    (void)::testing::internal::GetCapturedStderr();
    const auto without = pool.map(pid_after_a_nap, crew::range(200));
    EXPECT_LE(longest_run(with_bar), 12u) << "four chunks of 3 in a row at most";
    EXPECT_GE(longest_run(without), 25u);
    // imap's automatic chunks hold one call until a result says what a call costs, then aim at
    // a few hundred microseconds: 2 ms calls stay one a chunk, and its early estimate is honest
    // (chunks grown to 128 calls before the first result made it twice the truth).
    std::vector<int> lazily;
    for (int pid : pool.imap(pid_after_a_nap, crew::range(200))) lazily.push_back(pid);
    EXPECT_LE(longest_run(lazily), 8u);
}

// crew::progress wraps any loop, as tqdm does; a break still draws the last state.
TEST(Progress, WrapsAnyLoop) {
    ::testing::internal::CaptureStderr();
    const std::vector<std::string> words{"a", "b", "c", "d"};
    std::string joined;
    for (const std::string& word : crew::progress(words, "words")) joined += word;
    int counted = 0;
    for (int i : crew::progress(crew::range(100), "steps")) {
        if (i == 10) break;
        ++counted;
    }
    std::size_t lines = 0;
    for (long n :
         crew::progress(crew::range(5L) | std::views::filter([](long x) { return x % 2; })))
        lines += static_cast<std::size_t>(n);
    std::string text = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(joined, "abcd");
    EXPECT_EQ(counted, 10);
    EXPECT_EQ(lines, 4u);
    EXPECT_NE(text.find("words: 4/4 (100%)"), std::string::npos) << text;
    EXPECT_NE(text.find("steps: 10/100 (10%)"), std::string::npos) << text;
    EXPECT_NE(text.find("progress: 2 elapsed"), std::string::npos) << "no total: " << text;
}

TEST(Progress, AsCompletedCountsTheFuturesItYields) {
    crew::ProcessPoolExecutor executor({.max_workers = 2});
    std::vector<crew::Future<int>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(executor.submit(square, i));
    ::testing::internal::CaptureStderr();
    int sum = 0;
    for (const auto& future : crew::as_completed(futures, {.timeout = 60s, .progress = true}))
        sum += future.result();
    for (const auto& future :
         crew::as_completed(futures, {.timeout = 60s, .progress = true, .label = "again"}))
        sum += future.result();
    std::string text = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(sum, 2 * 2470);
    EXPECT_NE(text.find("as_completed: 20/20 (100%)"), std::string::npos) << text;
    EXPECT_NE(text.find("again: 20/20 (100%)"), std::string::npos) << text;
    EXPECT_EQ(count_of(text, "as_completed: 20/20"), 1u) << text;
}

}  // namespace
