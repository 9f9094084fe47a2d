// pool/task_runner.hpp: making a task's calls and writing its reply, as a pool worker does and as
// crew::run_batch does for a registered Parallel backend.
#pragma once

#include <chrono>
#include <span>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/worker_protocol.hpp"

namespace crew::detail {

// Empties reply and leaves room at its start for the ReplyHeader written once the task is done.
void start_reply(Writer& reply);

struct RanCalls {
    ReplyKind kind;                 // ran: the results follow; failed: the exception follows
    std::chrono::nanoseconds busy;  // how long the calls took
};

// Makes the calls of a task message's body (after its TaskHeader), whose Reader owns fds, and
// writes their results into reply after the room start_reply left, or, if the task could not be
// read, the exception that kept it from running. running_task says which calls to make.
RanCalls run_calls(std::span<const std::byte> calls, std::span<const int> fds, Writer& reply);

}  // namespace crew::detail
