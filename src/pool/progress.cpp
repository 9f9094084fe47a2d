#include "crew/detail/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "foundation/log.hpp"

namespace crew::detail {
namespace {

constexpr auto terminal_interval = std::chrono::milliseconds(100);
constexpr auto plain_interval = std::chrono::seconds(2);
constexpr int default_columns = 80;  // when the terminal does not say

// The terminal's width now (it may have been resized since the last drawing).
int columns_of(int fd) {
    winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    return default_columns;
}

// Characters a terminal shows for text: UTF-8 continuation bytes take no column.
int visible_width(const std::string& text) {
    int width = 0;
    for (char c : text) width += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return width;
}

std::string clock_text(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    auto total = static_cast<long long>(seconds + 0.5);
    if (total >= 3600)
        return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
    return fmt::format("{:02}:{:02}", total / 60, total % 60);
}

std::string rate_text(double per_second) {
    if (per_second >= 1e6) return fmt::format("{:.2f}M/s", per_second / 1e6);
    if (per_second >= 1e3) return fmt::format("{:.2f}k/s", per_second / 1e3);
    return fmt::format("{:.2f}/s", per_second);
}

Progress::Output on_stderr() {
    const bool terminal = ::isatty(STDERR_FILENO) == 1;
    return {STDERR_FILENO, terminal,
            terminal ? std::chrono::nanoseconds(terminal_interval)
                     : std::chrono::nanoseconds(plain_interval)};
}

}  // namespace

Progress::Progress(std::string label, std::optional<std::uint64_t> total)
    : Progress(std::move(label), total, on_stderr()) {}

Progress::Progress(std::string label, std::optional<std::uint64_t> total, Output output)
    : label_(std::move(label)),
      total_(total),
      output_(output),
      start_(std::chrono::steady_clock::now()),
      next_draw_((start_ + output.interval).time_since_epoch().count()) {
    if (output_.terminal) draw(false);
}

Progress::~Progress() {
    finish();
}

void Progress::advance(std::uint64_t count) {
    const std::uint64_t done = done_.fetch_add(count) + count;
    if (total_ && done >= *total_) {
        finish();
        return;
    }
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto due = next_draw_.load(std::memory_order_relaxed);
    // One thread draws; the others go on with their work.
    if (now >= due && next_draw_.compare_exchange_strong(due, now + output_.interval.count())) {
        draw(false);
    }
}

void Progress::finish() {
    std::lock_guard lock(drawing_);
    if (finished_) return;
    finished_ = true;
    draw_locked(true);
}

void Progress::draw(bool last) {
    std::lock_guard lock(drawing_);
    if (finished_) return;
    draw_locked(last);
}

void Progress::draw_locked(bool last) {
    const std::uint64_t done = done_.load();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    std::string text;
    if (total_) {
        const double fraction =
            *total_ == 0 ? 1.0
                         : std::min(1.0, static_cast<double>(done) / static_cast<double>(*total_));
        const double remaining =
            rate > 0 ? static_cast<double>(*total_ - std::min(done, *total_)) / rate : NAN;
        // Rounded down: 995 of 1000 is 99%, and 100% means all are done.
        const int percent = static_cast<int>(std::floor(100 * fraction));
        if (output_.terminal) {
            const std::string head = fmt::format("{}: {:3}%|", label_, percent);
            const std::string tail =
                fmt::format("| {}/{} [{}<{}, {}]", done, *total_, clock_text(elapsed),
                            clock_text(remaining), rate_text(rate));
            const int columns = output_.columns > 0 ? output_.columns : columns_of(output_.fd);
            // One column left free: a line that fills the terminal would wrap on some.
            const int width = std::max(0, columns - 1 - visible_width(head) - visible_width(tail));
            const int filled = static_cast<int>(fraction * width);
            std::string bar;
            for (int i = 0; i < width; ++i) bar += i < filled ? "\u2588" : " ";
            text = "\r" + head + bar + tail + "\x1b[K";
        } else {
            text =
                fmt::format("{}: {}/{} ({}%) elapsed {} remaining {} {}\n", label_, done, *total_,
                            percent, clock_text(elapsed), clock_text(remaining), rate_text(rate));
        }
    } else if (output_.terminal) {
        text = fmt::format("\r{}: {} [{}, {}]\x1b[K", label_, done, clock_text(elapsed),
                           rate_text(rate));
    } else {
        text = fmt::format("{}: {} elapsed {} {}\n", label_, done, clock_text(elapsed),
                           rate_text(rate));
    }
    if (last && output_.terminal) text += '\n';
    write_all(output_.fd, text);
}

}  // namespace crew::detail
