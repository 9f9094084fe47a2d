#include "pool/task_runner.hpp"

#include "crew/detail/callable.hpp"
#include "crew/remote_exception.hpp"

namespace crew::detail {

void start_reply(Writer& reply) {
    reply.clear();
    const ReplyHeader placeholder;
    reply.write_bytes(&placeholder, sizeof placeholder);
}

RanCalls run_calls(std::span<const std::byte> calls, std::span<const int> fds, Writer& reply) {
    start_reply(reply);
    ReplyKind kind = ReplyKind::ran;
    const auto started = std::chrono::steady_clock::now();
    try {
        Reader task(calls, fds);
        invoke_call(task, reply);
    } catch (...) {
        start_reply(reply);
        encode_current_exception(reply);
        kind = ReplyKind::failed;
    }
    return {kind, std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - started)};
}

}  // namespace crew::detail
