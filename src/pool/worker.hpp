// pool/worker.hpp: a pool worker process, as the pool starts it.
//
// The pool (pool_core.cpp) makes each worker's channel, one shared mapping laid out as below, and
// starts the worker as a crew::Process running worker_main with a WorkerSetup. The messages on
// the channel are crew/detail/worker_protocol.hpp's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/ring_pair.hpp"
#include "crew/detail/worker_protocol.hpp"
#include "crew/serialization.hpp"

namespace crew::detail {

// A worker's channel is a RingPair of RingPair::pool_worker_capacity: tasks go to the worker's
// end, replies to the pool's, and the trailer holds the worker's WorkerProgress.
constexpr int worker_end = 0;
constexpr int pool_end = 1;

// What a worker needs from its pool: its descriptors, its number and its initializer.
struct WorkerSetup {
    SentFd channel;
    SentFd tasks_wake;  // the worker's end of the socket the pool signals when tasks come
    SentFd wake;
    SentFd descriptors;  // a socket on which the descriptors that tasks carry arrive
    std::uint64_t number = 0;
    std::int32_t max_tasks = 0;
    bool timed = false;  // the pool has a task_timeout
    std::vector<std::byte> initializer;
    std::vector<SentFd> initializer_fds;

    void encode_into(Writer& writer) const;
    static WorkerSetup decode_from(Reader& reader);
};
// The worker's life: runs the initializer, says it is ready, then runs tasks until asked to stop
// or, under max_tasks_per_child, until it has run max_tasks of them.
void worker_main(WorkerSetup setup);

}  // namespace crew::detail
