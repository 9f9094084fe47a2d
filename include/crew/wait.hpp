// crew/wait.hpp: crew::wait, Python's multiprocessing.connection.wait: one sleep until any of
// several connections, queues, processes and descriptors is ready.
//
//     crew::Queue<int> results;
//     crew::Process producer(produce, results);
//     producer.start();
//     for (crew::Waitable& ready : crew::wait({results, producer})) {
//         if (ready == results) handle(results.get());
//         else if (ready == producer) throw std::runtime_error("the producer ended");
//     }
//
// Ready means: a Connection: recv() returns at once (a message, or crew::EOFError); a Queue
// (any kind): a message waits in it, though another consumer may take it first, so get_nowait()
// may still throw crew::Empty, as in Python; a Process: it has ended (its sentinel() is
// readable); a descriptor: it is readable. wait() returns the ready ones in the order given as
// soon as one is, or none once timeout has passed (no timeout: as long as it takes). Nothing is
// read or taken. Ctrl-C while it sleeps throws crew::Interrupted. The objects must outlive the
// call; a closed connection throws crew::Error, a Process not started yet too, when its
// Waitable is made. A Waitable compares equal to another made from the same object (or a copy
// of the same queue, or the same process's sentinel).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "crew/pipe.hpp"
#include "crew/process.hpp"
#include "crew/queue.hpp"

namespace crew {

namespace detail {
class Sleeper;
}

class Waitable {
  public:
    template <class T>
    Waitable(Connection<T>& connection) : kind_(Kind::connection), channel_(&connection.channel_) {}
    template <class T>
    Waitable(Queue<T>& queue) : kind_(Kind::queue), queue_(queue.core_.get()) {}
    template <class T>
    Waitable(SimpleQueue<T>& queue) : Waitable(queue.queue_) {}
    Waitable(const Process& process) : Waitable(process.sentinel()) {}
    // A descriptor to poll for reading, as Python's wait takes an int.
    Waitable(int descriptor) : kind_(Kind::descriptor), descriptor_(descriptor) {}

    friend bool operator==(const Waitable& first, const Waitable& second) {
        if (first.kind_ != second.kind_) return false;
        switch (first.kind_) {
            case Kind::connection:
                return first.channel_ == second.channel_;
            case Kind::queue:
                return first.queue_ == second.queue_;
            case Kind::descriptor:
                return first.descriptor_ == second.descriptor_;
        }
        return false;
    }

  private:
    friend class detail::Sleeper;
    friend std::vector<Waitable> wait(std::span<const Waitable>, const Timeout&);
    enum class Kind : std::uint8_t { connection, queue, descriptor };
    Kind kind_;
    union {
        detail::PipeChannel* channel_;
        detail::QueueCore* queue_;
        int descriptor_;
    };
};

std::vector<Waitable> wait(std::span<const Waitable> objects,
                           const Timeout& timeout = std::nullopt);

inline std::vector<Waitable> wait(std::initializer_list<Waitable> objects,
                                  const Timeout& timeout = std::nullopt) {
    return wait(std::span<const Waitable>(objects.begin(), objects.size()), timeout);
}

}  // namespace crew
