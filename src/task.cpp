#include "crew/detail/task.hpp"

#include <unistd.h>

#include "crew/error.hpp"

namespace crew::detail {
void encode_current_exception(Writer& out) {
    std::string what;
    try {
        throw;
    } catch (const RemoteError& error) {
        what = error.message();  // a task that ran a task of its own: keep the original's text
    } catch (const std::exception& error) {
        what = error.what();
    } catch (...) {
    }
    encode(out, current_exception_type_name());
    encode(out, what);
    encode(out, static_cast<std::int32_t>(::getpid()));
}

std::exception_ptr decode_exception(Reader& in) {
    std::string type = decode<std::string>(in);
    std::string what = decode<std::string>(in);
    auto pid = decode<std::int32_t>(in);
    return std::make_exception_ptr(RemoteError(std::move(type), std::move(what), pid));
}

TaskResults::TaskResults(std::span<const std::byte> message) {
    Reader in(message);
    count_ = decode<std::uint32_t>(in);
    layout_ = decode<Layout>(in);
    rest_ = in.take(in.remaining());
}

}  // namespace crew::detail
