#include "crew/future.hpp"

#include "foundation/log.hpp"

namespace crew::detail {

void ignore_failed_callback(std::exception_ptr error) noexcept {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& thrown) {
        log(LogLevel::error, "a future's done callback threw ({}); ignored", thrown.what());
    } catch (...) {
        log(LogLevel::error,
            "a future's done callback threw something not a std::exception; ignored");
    }
}

}  // namespace crew::detail
