#include "crew/detail/task.hpp"

#include "crew/error.hpp"

namespace crew::detail {
TaskResults::TaskResults(std::span<const std::byte> message) {
    Reader in(message);
    count_ = decode<std::uint32_t>(in);
    layout_ = decode<Layout>(in);
    rest_ = in.take(in.remaining());
}

}  // namespace crew::detail
