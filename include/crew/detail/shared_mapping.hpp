// crew/detail/shared_mapping.hpp: a block of memory shared between processes, backed by a memfd.
//
// The memory is anonymous (nothing in /dev/shm, nothing to clean up after a crash), and it is
// touched when created, so that it is warm: on these machines a first touch of a page costs about
// 17 µs, so memory that messages pass through must never be fresh. Another process maps the same
// block from the descriptor (sent to it, or inherited).
#pragma once

#include <cstddef>

#include "crew/detail/unique_fd.hpp"

namespace crew::detail {

class SharedMapping {
  public:
    SharedMapping() = default;
    // Whether every page is touched when mapped, or only once used: a sparse block larger than
    // anything it will hold takes memory for the pages written only.
    enum class Pages { touched, on_first_use };
    // A new block of size bytes, zeroed. name shows in /proc/<pid>/maps.
    static SharedMapping create(std::size_t size, const char* name, Pages pages = Pages::touched);
    // Maps the whole block behind fd, which it takes.
    static SharedMapping attach(UniqueFd fd, Pages pages = Pages::touched);

    SharedMapping(SharedMapping&& other) noexcept;
    SharedMapping& operator=(SharedMapping&& other) noexcept;
    SharedMapping(const SharedMapping&) = delete;
    SharedMapping& operator=(const SharedMapping&) = delete;
    ~SharedMapping();

    std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    int fd() const noexcept { return fd_.get(); }

  private:
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    UniqueFd fd_;
};

}  // namespace crew::detail
