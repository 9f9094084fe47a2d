// crew/detail/progress.hpp: the progress bar that map, imap, starmap and Executor::map draw with
// .progress = true, after tqdm's.
//
// On a terminal it redraws one line of stderr at most ten times a second: percentage (rounded
// down, so 100% means done), a bar filling the terminal's width and count when the total is known,
// then elapsed time, estimated remaining time and rate. Anywhere else (a file, a pipe) it writes a
// plain line every few seconds instead. The last state is written, ending the line, when the work
// is done or the Progress goes away. advance() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace crew::detail {

// What a map tells as its calls complete: the bar below, or crew::Parallel's verbose lines.
// advance() may be called from any thread; finish() says the work is done.
class ProgressReport {
  public:
    virtual ~ProgressReport() = default;
    virtual void advance(std::uint64_t count) = 0;
    virtual void finish() = 0;
};

class Progress final : public ProgressReport {
  public:
    struct Output {
        int fd;
        bool terminal;                      // redraw one line, or write a line each interval
        std::chrono::nanoseconds interval;  // between drawings
        int columns = 0;  // the line's width on a terminal; 0: the terminal's, asked each drawing
    };

    // On stderr, as a bar if stderr is a terminal.
    Progress(std::string label, std::optional<std::uint64_t> total);
    Progress(std::string label, std::optional<std::uint64_t> total, Output output);
    ~Progress() override;
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void advance(std::uint64_t count) override;
    // Draws the last state and ends the line; later calls do nothing.
    void finish() override;

  private:
    void draw(bool last);
    void draw_locked(bool last);

    std::string label_;
    std::optional<std::uint64_t> total_;
    Output output_;
    std::chrono::steady_clock::time_point start_;
    std::atomic<std::uint64_t> done_{0};
    std::atomic<std::int64_t> next_draw_;  // steady_clock ticks
    std::mutex drawing_;
    bool finished_ = false;
};

}  // namespace crew::detail
