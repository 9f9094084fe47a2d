// crew/detail/shared_block.hpp: a block of shared memory that crosses process boundaries.
//
// The locks, queues and shared values each keep their state in one SharedBlock. Copies of a
// block share one mapping; a block sent to another process (in a task's or a Process's
// arguments) travels as its descriptor and is mapped there again. The memory goes when the last
// process holding it lets go: nothing is left in /dev/shm.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/shared_mapping.hpp"

namespace crew::detail {

// A block of shared memory holding one State, shared by every copy of the object that owns it
// and by the processes it is sent to (as a descriptor: see SentFd).
class SharedBlock {
  public:
    SharedBlock(std::size_t size, const char* name);
    std::byte* data() const noexcept { return mapping_->data(); }
    std::size_t size() const noexcept { return mapping_->size(); }
    void encode_into(Writer& writer) const;

    // How long a process that keeps received blocks (keep_received) keeps one: while it is among
    // the last ones received (a lock, a queue), or only until release_idle() (a large argument,
    // whose memory must go with the call that sent it).
    enum class Kept { while_recent, until_idle };
    static SharedBlock decode_from(Reader& reader, Kept kept = Kept::while_recent);
    // From now on this process keeps the last count blocks it received mapped, and a block that
    // arrives again is not mapped anew (tens of microseconds): for pool workers, whose tasks
    // often carry the same lock or queue.
    static void keep_received(std::size_t count);
    // Lets go of the blocks kept until idle that nothing else here holds: for a pool worker with
    // no task waiting.
    static void release_idle();

  private:
    explicit SharedBlock(std::shared_ptr<SharedMapping> mapping) : mapping_(std::move(mapping)) {}
    std::shared_ptr<SharedMapping> mapping_;
};

}  // namespace crew::detail
