// crew/shared_memory.hpp: crew::SharedMemory, Python's multiprocessing.shared_memory: a block of
// bytes that several processes map, by name or handed over as an argument.
//
//     void fill(crew::SharedMemory memory) {
//         std::ranges::fill(memory.buf(), std::byte{7});
//     }
//
//     auto memory = crew::SharedMemory::create("crew-example", 4096);  // /dev/shm/crew-example
//     crew::Process p(fill, memory);
//     p.start();
//     p.join();
//     auto again = crew::SharedMemory::attach("crew-example");  // as any process may
//     // again.buf()[0] == std::byte{7}
//
// A segment is zeroed when created. Copies of a SharedMemory object, and the objects a process
// receives as arguments, map the same bytes. crew adds no locking: use a crew::Lock.
//
// Lifetime: an unnamed segment (SharedMemory(size)) is gone when the last process using it lets
// go. A named one stays in /dev/shm until unlink() is called, by any process, or until the
// object that created it (and every copy of it in the creating process) is destroyed, or until
// the creating program ends however it ends: its fork server (crew/start_method.hpp) unlinks
// what is left, after ending the program's children. Processes that mapped it keep their
// mapping after the unlink; it cannot be attached by name any more.
//
// Errors: create() of a name that exists, attach() of one that does not, an empty or malformed
// name, or size 0 throw crew::Error (crew::SystemError with errno for what the system refused).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "crew/detail/byte_stream.hpp"

namespace crew {

class SharedMemory {
  public:
    // A new unnamed segment of size bytes.
    explicit SharedMemory(std::size_t size);
    // Python's SharedMemory(name, create=True, size=size): a new segment /dev/shm/<name>.
    static SharedMemory create(const std::string& name, std::size_t size);
    // Python's SharedMemory(name): the existing segment /dev/shm/<name>.
    static SharedMemory attach(const std::string& name);

    // The bytes, valid while this object or a copy of it lives.
    std::span<std::byte> buf() const noexcept;
    std::size_t size() const noexcept;
    // The name given to create() or attach(); empty for an unnamed segment.
    const std::string& name() const noexcept;
    // Removes the name from /dev/shm; mappings stay. Throws if it was already removed.
    void unlink();

    void encode_into(detail::Writer& writer) const;
    static SharedMemory decode_from(detail::Reader& reader);

  private:
    struct Segment;
    explicit SharedMemory(std::shared_ptr<Segment> segment) : segment_(std::move(segment)) {}
    std::shared_ptr<Segment> segment_;
};

}  // namespace crew
