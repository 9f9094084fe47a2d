#include "crew/detail/shared_block.hpp"

#include <sys/stat.h>

#include <deque>
#include <mutex>

#include "crew/error.hpp"
#include "crew/serialization.hpp"

namespace crew::detail {

SharedBlock::SharedBlock(std::size_t size, const char* name)
    : mapping_(std::make_shared<SharedMapping>(SharedMapping::create(size, name))) {}

void SharedBlock::encode_into(Writer& writer) const {
    encode(writer, SentFd{mapping_->fd()});
}

namespace {

struct ReceivedBlock {
    dev_t device;
    ino_t inode;  // unique while the block is held, and it is held here
    std::shared_ptr<SharedMapping> mapping;
};

struct ReceivedBlocks {
    std::mutex mutex;
    std::size_t capacity = 0;
    std::deque<ReceivedBlock> blocks;  // the most recently received last
};

ReceivedBlocks& received_blocks() {
    static auto* blocks = new ReceivedBlocks;  // never destroyed: blocks may go after main
    return *blocks;
}

}  // namespace

void SharedBlock::keep_received(std::size_t count) {
    ReceivedBlocks& kept = received_blocks();
    std::lock_guard lock(kept.mutex);
    kept.capacity = count;
}

SharedBlock SharedBlock::decode_from(Reader& reader) {
    UniqueFd fd(decode<SentFd>(reader).fd);
    ReceivedBlocks& kept = received_blocks();
    std::lock_guard lock(kept.mutex);
    if (kept.capacity == 0) {
        return SharedBlock(std::make_shared<SharedMapping>(SharedMapping::attach(std::move(fd))));
    }
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0) throw_system_error("cannot stat shared memory");
    for (auto block = kept.blocks.begin(); block != kept.blocks.end(); ++block) {
        if (block->device == status.st_dev && block->inode == status.st_ino) {
            ReceivedBlock again = std::move(*block);
            kept.blocks.erase(block);
            kept.blocks.push_back(std::move(again));
            return SharedBlock(kept.blocks.back().mapping);
        }
    }
    auto mapping = std::make_shared<SharedMapping>(SharedMapping::attach(std::move(fd)));
    if (kept.blocks.size() == kept.capacity) kept.blocks.pop_front();
    kept.blocks.push_back({status.st_dev, status.st_ino, mapping});
    return SharedBlock(std::move(mapping));
}

}  // namespace crew::detail
