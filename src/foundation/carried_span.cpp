#include "crew/detail/carried_span.hpp"

namespace crew::detail {

SharedBlock copy_to_shared_block(std::span<const std::byte> bytes) {
    SharedBlock block(bytes.size(), "crew-argument");
    std::memcpy(block.data(), bytes.data(), bytes.size());
    return block;
}

const SharedBlock& LargeArguments::block_for(std::span<const std::byte> bytes) {
    const std::pair<const std::byte*, std::size_t> key{bytes.data(), bytes.size()};
    auto found = blocks_.find(key);
    if (found == blocks_.end()) found = blocks_.emplace(key, copy_to_shared_block(bytes)).first;
    return found->second;
}

}  // namespace crew::detail
