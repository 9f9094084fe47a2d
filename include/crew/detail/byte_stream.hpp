// crew/detail/byte_stream.hpp: the buffers messages are written into and read from.
//
// A Writer appends to one growing buffer that is reused from message to message (clear() keeps
// its memory); its stream() lets cereal append to the same buffer without a std::ostringstream.
// A Reader reads a message in place and reports a short or corrupt message as a crew::Error.
// The std streams are built on first use only: raw values never pay for their locale setup.
//
// A message may carry file descriptors beside its bytes (see SentFd in crew/serialization.hpp):
// the Writer collects them, whoever sends the message passes them on (SCM_RIGHTS, inheritance),
// and the Reader on the other side is given the numbers they arrived as.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <streambuf>
#include <utility>
#include <vector>

#include "crew/detail/unique_fd.hpp"

namespace crew::detail {

// A buffer of malloc'd memory. One of 32 KiB or more, once done with, is kept for a later message
// instead of being freed (a few dozen are): a first touch of fresh memory costs far more than a
// copy on these machines (bench/README.md), and neither a pool's chunks nor a 64 MiB argument
// sent again should pay for it each time.
struct Buffer {
    struct Release {
        std::size_t capacity = 0;
        void operator()(std::byte* bytes) const noexcept;
    };
    using Owner = std::unique_ptr<std::byte, Release>;
    // A kept buffer of at least capacity bytes, the smallest there is; else null.
    static Owner take_spare(std::size_t capacity);
};

// A finished message's bytes, taken from the Writer that wrote them.
class MessageBytes {
  public:
    MessageBytes() = default;
    MessageBytes(Buffer::Owner data, std::size_t size) : data_(std::move(data)), size_(size) {}
    std::byte* data() noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::span<const std::byte> bytes() const noexcept { return {data_.get(), size_}; }

  private:
    Buffer::Owner data_;
    std::size_t size_ = 0;
};

// Asks the kernel to back [data, data + size) with transparent huge pages, before the memory is
// first touched: a huge page the kernel has just freed costs about what one 4 KiB page fault
// does on these machines, so a large vector crew fills for the program (a map's results, a
// decoded 64 MiB argument), fresh at every call, takes about 500 times fewer faults. Done for
// 4 MiB and more; where huge pages are off it changes nothing. Not for the buffers crew keeps
// (message buffers, a ring reader's): those are touched once, and on these virtual machines a
// huge page never touched before costs as much as its 512 small pages, about 7 ms, so a first
// 64 MiB call took 0.6-1.0 s with them and 0.17 s without.
void prefer_huge_pages(const void* data, std::size_t size) noexcept;

class Writer {
  public:
    Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Makes room for size bytes in all, so that writing up to them allocates nothing more.
    void reserve(std::size_t size) {
        if (size > appender_.capacity) appender_.grow_to(size);
    }
    void write_bytes(const void* data, std::size_t size) {
        // Inline when the buffer has room: encoding a chunk of small values is a loop of these.
        if (size <= appender_.capacity - appender_.size && size != 0) {
            std::memcpy(appender_.data.get() + appender_.size, data, size);
            appender_.size += size;
        } else {
            appender_.append(data, size);
        }
    }
    // The number of bytes written so far; clear() starts again without giving memory back.
    std::size_t size() const noexcept { return appender_.size; }
    // Drops what was written after the first size bytes.
    void truncate(std::size_t size) noexcept { appender_.size = std::min(size, appender_.size); }
    // Replaces size bytes at offset, which must have been written already.
    void overwrite(std::size_t offset, const void* data, std::size_t size);
    void clear() noexcept {
        appender_.size = 0;
        attached_fds_.clear();
        attached_files_.clear();
        owned_fds_.clear();
    }
    std::span<const std::byte> bytes() const noexcept { return {appender_.data.get(), size()}; }
    // Hands over what was written, without copying it; the Writer starts again empty.
    MessageBytes take_bytes() noexcept {
        MessageBytes taken(std::move(appender_.data), appender_.size);
        appender_.size = 0;
        appender_.capacity = 0;
        appender_.data = Buffer::Owner(nullptr, Buffer::Release{0});
        return taken;
    }
    // A std::ostream whose writes land in this buffer, for cereal's archives.
    std::ostream& stream();

    // Attaches a descriptor to the message; returns its index among the message's descriptors.
    // The message holds a duplicate of it until cleared or destroyed, so that the object that
    // attached it may close its own first (a temporary that carried it, say). A descriptor of a
    // file (shared memory) attached already gets that one's index: a large argument shared by
    // every call of a chunk travels once.
    std::size_t attach_fd(int fd);
    std::span<const int> attached_fds() const noexcept { return attached_fds_; }
    // Hands over the attached descriptors, in the order attached; the message has none after.
    std::vector<UniqueFd> take_fds() noexcept {
        attached_fds_.clear();
        attached_files_.clear();
        return std::exchange(owned_fds_, {});
    }

  private:
    struct Appender : std::streambuf {
        Buffer::Owner data;
        std::size_t size = 0;
        std::size_t capacity = 0;

        void append(const void* bytes, std::size_t count);
        void grow_to(std::size_t wanted);
        std::streamsize xsputn(const char* bytes, std::streamsize count) override;
        int_type overflow(int_type byte) override;
    };
    Appender appender_;
    std::optional<std::ostream> stream_;
    std::vector<int> attached_fds_;
    // Which file each attached descriptor is (device, inode), unique while the message holds it;
    // {0, 0} for one that is no file.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> attached_files_;
    std::vector<UniqueFd> owned_fds_;  // behind attached_fds_
};

class Reader {
  public:
    // fds: the descriptors that came with the message, in the order they were attached. They are
    // the Reader's, closed when it goes: each object decoded from one owns a duplicate.
    explicit Reader(std::span<const std::byte> bytes, std::span<const int> fds = {});
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Copies the next size bytes out; throws crew::Error if fewer remain.
    void read_bytes(void* out, std::size_t size) {
        if (size <= source_.remaining() && size <= small_read && size != 0) {
            std::memcpy(out, source_.position(), size);
            source_.advance(size);
        } else {
            read_bytes_slowly(out, size);
        }
    }
    // The next size bytes, in place; throws crew::Error if fewer remain.
    std::span<const std::byte> take(std::size_t size);
    std::size_t remaining() const noexcept { return source_.remaining(); }
    // A std::istream over what remains, for cereal's archives; reading from it advances this.
    std::istream& stream();

    // A duplicate of the descriptor attached at index, for the caller to own (one descriptor may
    // serve several objects of a message: see Writer::attach_fd). Throws crew::Error if the
    // message came without it.
    int take_attached_fd(std::size_t index) const;

  private:
    static constexpr std::size_t small_read = 1 << 20;
    void read_bytes_slowly(void* out, std::size_t size);

    struct Source : std::streambuf {
        explicit Source(std::span<const std::byte> bytes);
        std::size_t remaining() const noexcept {
            return static_cast<std::size_t>(egptr() - gptr());
        }
        const char* position() const noexcept { return gptr(); }
        void advance(std::size_t count) { gbump(static_cast<int>(count)); }
    };
    Source source_;
    std::optional<std::istream> stream_;
    std::span<const int> fds_;
};

}  // namespace crew::detail
