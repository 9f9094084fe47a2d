#include "crew/error.hpp"

#include <cerrno>
#include <cstring>

namespace crew {

SystemError::SystemError(const std::string& what_failed, int error_number)
    : Error("crew: " + what_failed + ": " + std::strerror(error_number)),
      error_number_(error_number) {}

void detail::throw_system_error(const std::string& what_failed) {
    throw SystemError(what_failed, errno);
}

}  // namespace crew
