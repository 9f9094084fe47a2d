#include "crew/queue.hpp"

#include "crew/detail/interrupt.hpp"

#include <new>
#include <optional>
#include <string>

namespace crew::detail {
namespace {

// A waiting consumer looks for messages every 2.5 us or so, not every 0.3 us as a pool worker
// does: a producer streaming small messages then writes many between looks instead of losing
// its counter's cache line at every one (8-byte messages: 6.5 -> 10.8 million a second).
constexpr int consumer_pauses_between_looks = 128;
constexpr std::size_t ring_at = 512;  // after State

// Messages put and not got; a consumer's count may be ahead of its producer's for a moment.
std::size_t messages_between(std::uint32_t got, std::uint32_t put) {
    const auto count = static_cast<std::int32_t>(put - got);
    return count > 0 ? static_cast<std::size_t>(count) : 0;
}

bool passed(const Deadline& deadline) {
    return deadline && Clock::now() >= *deadline;
}

// An InterruptWatch made only once a call must wait: the calls that wait for nothing, most of
// them, neither read the clock nor touch the interrupt counters, which would cost a stream of
// small messages three quarters of its rate.
class WatchOnWait {
  public:
    const InterruptWatch& operator*() {
        if (!watch_) watch_.emplace();
        return *watch_;
    }
    bool interrupted() const { return watch_ && watch_->interrupted(); }

  private:
    std::optional<InterruptWatch> watch_;
};

// Until when a wait may sleep before it looks again: for Ctrl-C, the deadline, a wake-up lost,
// or (for a consumer waiting for the rest of a begun message) to check that its producer lives.
Deadline look_again(WatchOnWait& watch, const Deadline& deadline) {
    const Deadline until = (*watch).slice(deadline);
    const auto soon = Clock::now() + lost_wake_up_interval;
    return until && *until < soon ? until : soon;
}

// A deadline that has always passed: try once, and wait for nothing.
constexpr Clock::time_point no_wait{};

// Takes mutex before deadline, looking for Ctrl-C while it waits.
SharedMutex::Taken acquire(SharedMutex& mutex, const Deadline& deadline, WatchOnWait& watch) {
    auto taken = mutex.acquire_for_repair(false, std::nullopt);
    while (taken == SharedMutex::Taken::no && !passed(deadline)) {
        (*watch).throw_if_interrupted();
        taken = mutex.acquire_for_repair(true, time_left((*watch).slice(deadline)));
    }
    return taken;
}

// Holds a SharedMutex taken with acquire_for_repair until the end of the scope.
class Holding {
  public:
    explicit Holding(SharedMutex& mutex) : mutex_(mutex) {}
    Holding(const Holding&) = delete;
    Holding& operator=(const Holding&) = delete;
    ~Holding() { mutex_.release(); }

  private:
    SharedMutex& mutex_;
};

}  // namespace

struct QueueCore::State {
    std::uint64_t maxsize = 0;
    bool joinable = false;
    // Whole messages put and got, wrapping around, each on a cache line of its own side's. A
    // consumer may take a message before its producer has counted it.
    alignas(64) std::atomic<std::uint32_t> put{0};
    // Set by a crew::wait that sleeps on put; the producer that sees it clears it and wakes them.
    std::atomic<std::uint32_t> watched{0};
    alignas(64) std::atomic<std::uint32_t> got{0};
    // A consumer's note, made before it gives the last of a message's bytes back to the ring:
    // once the chain is read up to taken_until in ring taken_in, got is got_after. A consumer
    // that dies between the two leaves the count to the next (see repair_after_dead_consumer).
    std::atomic<std::uint32_t> got_after{0};
    std::atomic<std::uint32_t> taken_in{0};
    std::atomic<std::uint64_t> taken_until{0};
    alignas(64) std::atomic<std::uint32_t> producer_waiting{0};  // for got to move on
    // JoinableQueue: messages put and not yet marked done, and whether the producer holding the
    // producers' lock has counted a message it has not finished writing.
    alignas(64) std::atomic<std::uint32_t> unfinished{0};
    std::atomic<std::uint32_t> joiners{0};
    std::atomic<std::uint32_t> counted_unwritten{0};
    alignas(64) RingChainControl chain;
};

SharedBlock QueueCore::new_block(std::size_t maxsize, bool joinable) {
    static_assert(std::is_trivially_destructible_v<State> && sizeof(State) <= ring_at);
    SharedBlock block(ring_at + ring_footprint(RingChain::first_capacity), "crew-queue");
    State* shared = new (block.data()) State;
    shared->maxsize = maxsize;
    shared->joinable = joinable;
    return block;
}

QueueCore::QueueCore(std::size_t maxsize, bool joinable)
    : QueueCore(SharedMutex(false), SharedMutex(false), new_block(maxsize, joinable),
                std::make_shared<SharedMapping>(
                    SharedMapping::create(RingChain::sparse_size(), "crew-queue-backlog",
                                          SharedMapping::Pages::on_first_use))) {
    handle_interrupts();  // Ctrl-C in get() or put() throws crew::Interrupted, as in a pool
}

QueueCore::QueueCore(SharedMutex put_lock, SharedMutex get_lock, SharedBlock block,
                     std::shared_ptr<SharedMapping> backlog)
    : put_lock_(std::move(put_lock)),
      get_lock_(std::move(get_lock)),
      block_(std::move(block)),
      backlog_(std::move(backlog)),
      chain_(state().chain, block_.data() + ring_at, backlog_->data(), backlog_->fd()),
      writer_(chain_),
      reader_(chain_, consumer_pauses_between_looks) {}

QueueCore::State& QueueCore::state() const noexcept {
    return *std::launder(reinterpret_cast<State*>(block_.data()));
}

void QueueCore::check_open(const char* call) const {
    if (closed_) throw Error(std::string("crew: ") + call + " on a queue this process closed");
}

bool QueueCore::put(std::span<const std::byte> message, const Deadline& deadline) {
    check_open("put()");
    // Ctrl-C is heard wherever put waits before its message has begun; once begun, the message
    // is written whole.
    WatchOnWait watch;
    const auto taken = acquire(put_lock_, deadline, watch);
    if (taken == SharedMutex::Taken::no) return false;
    Holding holding(put_lock_);
    if (taken == SharedMutex::Taken::from_dead_owner) repair_after_dead_producer();
    writer_.resume();
    State& shared = state();
    if (shared.maxsize != 0) {
        while (true) {
            const std::uint32_t got = shared.got.load();
            if (messages_between(got, shared.put.load()) < shared.maxsize) break;
            shared.producer_waiting.store(1);
            if (shared.got.load() != got) continue;
            (*watch).throw_if_interrupted();
            if (!sleep_while(shared.got, got, look_again(watch, deadline)) && passed(deadline)) {
                return false;
            }
        }
    }
    if (shared.joinable) {
        shared.unfinished.fetch_add(1);
        shared.counted_unwritten.store(1);
    }
    bool written = writer_.write(message, RingWriter::now, no_wait);
    while (!written && !passed(deadline) && !watch.interrupted()) {
        written = writer_.write(message, RingWriter::now, (*watch).slice(deadline));
    }
    if (!written) {
        if (shared.joinable) {
            shared.counted_unwritten.store(0);
            shared.unfinished.fetch_sub(1);
        }
        if (watch.interrupted()) (*watch).throw_if_interrupted();
        return false;
    }
    shared.put.store(shared.put.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    // Relaxed, to cost a stream of puts nothing: should this load pass the store above, a watcher
    // that set watched just then misses this wake-up and looks again within lost_wake_up_interval.
    if (shared.watched.load(std::memory_order_relaxed) != 0) {
        shared.watched.store(0, std::memory_order_relaxed);
        futex_wake_all(shared.put);
    }
    if (shared.joinable) shared.counted_unwritten.store(0);
    return true;
}

bool QueueCore::get(const Deadline& deadline, void (*consume)(std::span<const std::byte>, void*),
                    void* context) {
    check_open("get()");
    WatchOnWait watch;
    const auto taken = acquire(get_lock_, deadline, watch);
    if (taken == SharedMutex::Taken::no) return false;
    Holding holding(get_lock_);
    reader_.resume();  // drops what a consumer that died here had begun
    if (taken == SharedMutex::Taken::from_dead_owner) repair_after_dead_consumer();
    State& shared = state();
    while (true) {
        // Once a message has begun it is received whole, unless its producer died.
        auto message = reader_.try_read();
        if (!message) {
            message = reader_.read_before(
                look_again(watch, reader_.assembling() ? std::nullopt : deadline));
        }
        // Messages a killed consumer took part of are gone, and counted as got.
        if (const std::uint32_t skipped = reader_.take_skipped()) {
            count_got(shared.got.load(std::memory_order_relaxed) + skipped);
        }
        if (message) {
            auto taken_away = [&] {
                const std::uint32_t got = shared.got.load(std::memory_order_relaxed) + 1;
                // got_after last: a consumer killed before it leaves a note whose got_after is
                // the last message's, already counted; one killed after it, a note whose place
                // is this message's end, which the ring reaches only once its bytes go back.
                shared.taken_in.store(reader_.segment(), std::memory_order_relaxed);
                shared.taken_until.store(reader_.position_after_release(),
                                         std::memory_order_relaxed);
                shared.got_after.store(got, std::memory_order_release);
                reader_.release();  // the note is seen before the bytes go back
                count_got(got);
            };
            try {
                consume(*message, context);
            } catch (...) {
                taken_away();
                throw;
            }
            taken_away();
            return true;
        }
        if (!reader_.assembling()) {
            if (passed(deadline)) return false;
            (*watch).throw_if_interrupted();
            continue;
        }
        if (producer_died()) {
            reader_.resume();
            if (passed(deadline)) return false;
        }
    }
}

// Sets got, waking the producers a bounded queue's room keeps waiting.
void QueueCore::count_got(std::uint32_t got) {
    State& shared = state();
    // Only a bounded queue's producers wait for got to move: for them, the store and the look at
    // producer_waiting must not pass each other (see put).
    if (shared.maxsize == 0) {
        shared.got.store(got, std::memory_order_release);
        return;
    }
    shared.got.store(got);
    if (shared.producer_waiting.load() != 0) {
        shared.producer_waiting.store(0);
        futex_wake_all(shared.got);
    }
}

// The consumer that held the lock died: if it gave a message's bytes back to the ring but had
// not counted the message as got, its note says so.
void QueueCore::repair_after_dead_consumer() {
    State& shared = state();
    const std::uint32_t got_after = shared.got_after.load();
    if (reader_.segment() == shared.taken_in.load() &&
        reader_.position() == shared.taken_until.load() && shared.got.load() != got_after) {
        count_got(got_after);
    }
}

bool QueueCore::producer_died() {
    const auto taken = put_lock_.acquire_for_repair(false, std::nullopt);
    if (taken == SharedMutex::Taken::no) return false;
    Holding holding(put_lock_);
    if (taken == SharedMutex::Taken::yes) return false;
    repair_after_dead_producer();
    return true;
}

// The producer that held the lock died; what it was writing will never be whole.
void QueueCore::repair_after_dead_producer() {
    State& shared = state();
    if (shared.counted_unwritten.exchange(0) != 0) {
        if (shared.unfinished.fetch_sub(1) == 1) futex_wake_all(shared.unfinished);
    }
}

std::size_t QueueCore::qsize() const {
    const State& shared = state();
    return messages_between(shared.got.load(), shared.put.load());
}

bool QueueCore::full() const {
    const State& shared = state();
    return shared.maxsize != 0 && qsize() >= shared.maxsize;
}

std::uint32_t QueueCore::watch_puts() {
    State& shared = state();
    shared.watched.store(1);
    return shared.put.load();
}

void QueueCore::sleep_while_puts_are(std::uint32_t count) {
    sleep_while(state().put, count, Clock::now() + lost_wake_up_interval);
}

void QueueCore::wake_watchers() {
    futex_wake_all(state().put);
}

void QueueCore::task_done() {
    State& shared = state();
    std::uint32_t unfinished = shared.unfinished.load();
    do {
        if (unfinished == 0) {
            throw Error("crew: task_done() called more times than messages were put");
        }
    } while (!shared.unfinished.compare_exchange_weak(unfinished, unfinished - 1));
    if (unfinished == 1 && shared.joiners.load() != 0) futex_wake_all(shared.unfinished);
}

void QueueCore::join() {
    State& shared = state();
    while (true) {
        const std::uint32_t unfinished = shared.unfinished.load();
        if (unfinished == 0) return;
        shared.joiners.fetch_add(1);
        sleep_while(shared.unfinished, unfinished, std::nullopt);
        shared.joiners.fetch_sub(1);
    }
}

void QueueCore::encode_into(Writer& writer) const {
    put_lock_.encode_into(writer);
    get_lock_.encode_into(writer);
    block_.encode_into(writer);
    encode(writer, SentFd{backlog_->fd()});
}

std::shared_ptr<QueueCore> QueueCore::decode_from(Reader& reader) {
    SharedMutex put_lock = SharedMutex::decode_from(reader);
    SharedMutex get_lock = SharedMutex::decode_from(reader);
    SharedBlock block = SharedBlock::decode_from(reader);
    auto backlog = std::make_shared<SharedMapping>(SharedMapping::attach(
        UniqueFd(decode<SentFd>(reader).fd), SharedMapping::Pages::on_first_use));
    return std::shared_ptr<QueueCore>(new QueueCore(std::move(put_lock), std::move(get_lock),
                                                    std::move(block), std::move(backlog)));
}

}  // namespace crew::detail
