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
    SharedBlock::Kept kept;
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

SharedBlock SharedBlock::decode_from(Reader& reader, Kept kept) {
    UniqueFd fd(decode<SentFd>(reader).fd);
    // A large argument is read where its call looks, not all at once: its pages are mapped as
    // they are touched.
    const auto pages = kept == Kept::until_idle ? SharedMapping::Pages::on_first_use
                                                : SharedMapping::Pages::touched;
    ReceivedBlocks& blocks = received_blocks();
    std::lock_guard lock(blocks.mutex);
    if (blocks.capacity == 0) {
        return SharedBlock(
            std::make_shared<SharedMapping>(SharedMapping::attach(std::move(fd), pages)));
    }
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0) throw_system_error("cannot stat shared memory");
    for (auto block = blocks.blocks.begin(); block != blocks.blocks.end(); ++block) {
        if (block->device == status.st_dev && block->inode == status.st_ino) {
            ReceivedBlock again = std::move(*block);
            blocks.blocks.erase(block);
            blocks.blocks.push_back(std::move(again));
            return SharedBlock(blocks.blocks.back().mapping);
        }
    }
    auto mapping = std::make_shared<SharedMapping>(SharedMapping::attach(std::move(fd), pages));
    if (blocks.blocks.size() == blocks.capacity) blocks.blocks.pop_front();
    blocks.blocks.push_back({status.st_dev, status.st_ino, mapping, kept});
    return SharedBlock(std::move(mapping));
}

void SharedBlock::release_idle() {
    ReceivedBlocks& blocks = received_blocks();
    std::lock_guard lock(blocks.mutex);
    std::erase_if(blocks.blocks, [](const ReceivedBlock& block) {
        return block.kept == Kept::until_idle && block.mapping.use_count() == 1;
    });
}

}  // namespace crew::detail
