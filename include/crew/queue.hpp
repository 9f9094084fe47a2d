// crew/queue.hpp: crew::Queue, crew::SimpleQueue and crew::JoinableQueue, Python's
// multiprocessing queues: first in, first out, between any number of processes and threads.
//
//     void worker(crew::Queue<std::string> queue) {
//         queue.put("Processed!");
//     }
//
//     crew::Queue<std::string> queue;
//     crew::Process p(worker, queue);
//     p.start();
//     std::cout << queue.get() << '\n';
//     p.join();
//
// A queue carries whole messages of T (anything crew/serialization.hpp can send, without
// descriptors), of any size, through shared memory. Messages from one producer arrive in the
// order it put them. A copy of a queue, or a queue handed to a crew::Process, is the same queue.
// Nothing is left in /dev/shm: the memory is gone when the last process using it ends.
//
// Blocking: get() waits (on a futex) for a message. put() waits only when the queue has a maxsize,
// for a free slot; without one it never waits, however much is unread: the queue's memory grows
// with what waits unread and shrinks as it is read (docs/queue.md). A producer may end as soon as
// its put() returns; its messages stay for the consumers. Timeouts: get(timeout) and put(x,
// timeout) wait at most that long for a message to begin, or for a slot, then throw crew::Empty
// or crew::Full, as get_nowait() and put_nowait() do at once. Once begun, a message is received
// whole. Ctrl-C in a waiting get() or put() throws crew::Interrupted.
//
// Crashes: a producer that dies in put() leaves no torn message: the pieces it wrote are
// dropped. A consumer that dies in get() loses at most the message it was receiving, counted as
// got; the next consumer carries on, and nothing is delivered twice. No wait hangs on a process
// that died before waking it. qsize() is approximate (as in Python); a producer killed inside
// put() may leave it off by one.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "crew/detail/byte_stream.hpp"
#include "crew/detail/futex.hpp"
#include "crew/detail/message_ring.hpp"
#include "crew/detail/ring_chain.hpp"
#include "crew/detail/shared_mapping.hpp"
#include "crew/error.hpp"
#include "crew/serialization.hpp"
#include "crew/synchronize.hpp"

namespace crew {

namespace detail {

// What every queue shares: a message ring in shared memory, one robust lock for the producers'
// end and one for the consumers', and counters.
class QueueCore {
  public:
    // maxsize 0: no limit on the number of messages.
    QueueCore(std::size_t maxsize, bool joinable);

    // False if no room came before the deadline.
    bool put(std::span<const std::byte> message, const Deadline& deadline);
    // Hands the next message to consume while it is read in place; false if none came before
    // the deadline.
    template <class Consume>
    bool get(const Deadline& deadline, Consume&& consume) {
        return get(
            deadline,
            [](std::span<const std::byte> message, void* context) {
                (*static_cast<std::remove_reference_t<Consume>*>(context))(message);
            },
            &consume);
    }
    bool get(const Deadline& deadline, void (*consume)(std::span<const std::byte>, void*),
             void* context);

    std::size_t qsize() const;
    bool full() const;
    // For crew::wait, which sleeps on the count of messages put: watch_puts() asks the next put
    // to wake the watchers and returns the count; sleep_while_puts_are(count) sleeps until a put
    // changes it, wake_watchers(), or lost_wake_up_interval.
    std::uint32_t watch_puts();
    void sleep_while_puts_are(std::uint32_t count);
    void wake_watchers();
    void task_done();
    void join();
    void close() noexcept { closed_ = true; }

    void encode_into(Writer& writer) const;
    static std::shared_ptr<QueueCore> decode_from(Reader& reader);

  private:
    struct State;
    static SharedBlock new_block(std::size_t maxsize, bool joinable);
    QueueCore(SharedMutex put_lock, SharedMutex get_lock, SharedBlock block,
              std::shared_ptr<SharedMapping> backlog);
    State& state() const noexcept;
    void check_open(const char* call) const;
    bool producer_died();
    void repair_after_dead_producer();
    void repair_after_dead_consumer();
    void count_got(std::uint32_t got);

    SharedMutex put_lock_;
    SharedMutex get_lock_;
    SharedBlock block_;
    std::shared_ptr<SharedMapping> backlog_;  // the chain's rings after the first
    RingChain chain_;
    RingWriter writer_;  // used by whoever holds put_lock_
    RingReader reader_;  // used by whoever holds get_lock_
    std::atomic<bool> closed_{false};
};

}  // namespace detail

// multiprocessing.Queue. maxsize 0: no limit on the number of messages waiting.
template <class T>
class Queue {
  public:
    explicit Queue(std::size_t maxsize = 0)
        : core_(std::make_shared<detail::QueueCore>(maxsize, false)) {}

    // Waits for room as long as it takes, or at most timeout, then throws crew::Full.
    void put(const T& value, const Timeout& timeout = std::nullopt) {
        const auto deadline = detail::deadline_for(timeout);
        const bool put_in_time = detail::with_message_bytes(
            value,
            [&](std::span<const std::byte> message) { return core_->put(message, deadline); });
        if (!put_in_time) throw Full();
    }
    void put_nowait(const T& value) { put(value, std::chrono::nanoseconds(0)); }

    // Waits for a message as long as it takes, or at most timeout, then throws crew::Empty.
    T get(const Timeout& timeout = std::nullopt) {
        std::optional<T> value;
        const bool got = core_->get(detail::deadline_for(timeout), [&](auto message) {
            value.emplace(detail::decode_message<T>(message));
        });
        if (!got) throw Empty();
        return std::move(*value);
    }
    T get_nowait() { return get(std::chrono::nanoseconds(0)); }

    std::size_t qsize() const { return core_->qsize(); }
    bool empty() const { return qsize() == 0; }
    bool full() const { return core_->full(); }
    // This process puts and gets no more through this queue (any copy of it): both then throw
    // crew::Error. Other processes go on.
    void close() noexcept { core_->close(); }

    void encode_into(detail::Writer& writer) const { core_->encode_into(writer); }
    static Queue decode_from(detail::Reader& reader) {
        return Queue(detail::QueueCore::decode_from(reader));
    }

  protected:
    explicit Queue(std::shared_ptr<detail::QueueCore> core) : core_(std::move(core)) {}
    friend class Waitable;
    std::shared_ptr<detail::QueueCore> core_;
};

// multiprocessing.JoinableQueue: a Queue that counts messages put and not yet marked done.
template <class T>
class JoinableQueue : public Queue<T> {
  public:
    explicit JoinableQueue(std::size_t maxsize = 0)
        : Queue<T>(std::make_shared<detail::QueueCore>(maxsize, true)) {}

    // A consumer has finished with a message it got; more calls than messages put throw.
    void task_done() { this->core_->task_done(); }
    // Waits until every message put has been marked done.
    void join() { this->core_->join(); }

    static JoinableQueue decode_from(detail::Reader& reader) {
        return JoinableQueue(detail::QueueCore::decode_from(reader));
    }

  private:
    explicit JoinableQueue(std::shared_ptr<detail::QueueCore> core) : Queue<T>(std::move(core)) {}
};

// multiprocessing.SimpleQueue: put, get, empty and close, nothing else.
template <class T>
class SimpleQueue {
  public:
    SimpleQueue() = default;
    void put(const T& value) { queue_.put(value); }
    T get() { return queue_.get(); }
    bool empty() const { return queue_.empty(); }
    void close() noexcept { queue_.close(); }

    void encode_into(detail::Writer& writer) const { queue_.encode_into(writer); }
    static SimpleQueue decode_from(detail::Reader& reader) {
        return SimpleQueue(Queue<T>::decode_from(reader));
    }

  private:
    explicit SimpleQueue(Queue<T> queue) : queue_(std::move(queue)) {}
    friend class Waitable;
    Queue<T> queue_;
};

}  // namespace crew
