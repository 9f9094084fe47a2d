// crew/error.hpp: the exceptions crew throws.
//
// Every error crew reports is a crew::Error, a std::runtime_error whose what() says what went
// wrong and what to do about it. A failed system call is a crew::SystemError, which also keeps
// the errno value. crew never aborts the calling process for a problem in a child, a message or
// an input: it throws one of these instead.
//
//     try {
//         crew::Process p(work);
//         p.join();                      // join() before start()
//     } catch (const crew::Error& e) {
//         std::cerr << e.what() << '\n';  // "crew: join() called before start() on Process-1 ..."
//     }
#pragma once

#include <stdexcept>
#include <string>

namespace crew {

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A system call failed; what() ends with the text of errno.
class SystemError : public Error {
  public:
    SystemError(const std::string& what_failed, int error_number);
    int error_number() const noexcept { return error_number_; }

  private:
    int error_number_;
};

// A process was asked to call something that is not a known entry point of a module it has
// loaded: another build of the program sent it, or the message was corrupted. Nothing was called.
class UnknownCallableError : public Error {
  public:
    using Error::Error;
};

namespace detail {
// Throws SystemError for the current errno.
[[noreturn]] void throw_system_error(const std::string& what_failed);
}  // namespace detail

}  // namespace crew
