// pool/queued_task.hpp: a task as a TaskTransport keeps it, from submit until its sink has heard.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/task_transport.hpp"
#include "crew/detail/unique_fd.hpp"

namespace crew::detail {

// Tasks a TaskTransport::Batch hands over at a time: few enough that a long map's first tasks
// start early, enough that the workers are woken once for many.
inline constexpr std::size_t tasks_in_a_batch = 64;

// A task's message. A small one is copied in rather than taken from the submitter's Writer, so
// that the thread that finishes the task (the broker, often) frees nothing the submitting thread
// allocated: both would take the same malloc arena's lock, at every task.
class TaskMessage {
  public:
    explicit TaskMessage(Writer& written) : size_(written.size()) {
        if (size_ > small_.size()) {
            large_ = written.take_bytes();
        } else if (size_ != 0) {
            std::memcpy(small_.data(), written.bytes().data(), size_);
        }
    }
    // A copy, for part of a task that runs again.
    TaskMessage copy() const {
        Writer written;
        written.write_bytes(bytes().data(), size_);
        return TaskMessage(written);
    }
    std::byte* data() noexcept { return size_ > small_.size() ? large_.data() : small_.data(); }
    std::size_t size() const noexcept { return size_; }
    std::span<const std::byte> bytes() const noexcept {
        return {size_ > small_.size() ? large_.bytes().data() : small_.data(), size_};
    }

  private:
    std::size_t size_;
    // The header and a call of a plain function with a few numbers fit.
    std::array<std::byte, 160> small_;
    MessageBytes large_;
};

struct QueuedTask {
    TaskMessage message;      // begins with its TaskHeader
    std::uint64_t first = 0;  // the sink's index of the chunk's first call
    std::uint32_t count = 0;  // the calls in the chunk
    std::shared_ptr<TaskSink> sink = {};
    // The calls to make, [begin_call, end_call): fewer than count once part of the chunk was
    // made, or failed, on a worker that died.
    std::uint32_t begin_call = 0;
    std::uint32_t end_call = 0;
    int attempts = 0;
    // That its arguments carry, sent beside the ring at each attempt; shared by its parts.
    std::shared_ptr<const std::vector<UniqueFd>> fds = {};
    std::uint64_t id = 0;  // as last sent

    // The part [begin, end) of its calls, as a task of its own.
    QueuedTask part(std::uint32_t begin, std::uint32_t end) const {
        return QueuedTask{message.copy(), first, count, sink, begin, end, attempts, fds, 0};
    }
};

}  // namespace crew::detail
