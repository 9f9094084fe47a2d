#include "crew/parallel_backend.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <utility>

#include "crew/detail/worker_protocol.hpp"
#include "crew/error.hpp"
#include "crew/parallel.hpp"
#include "crew/remote_exception.hpp"
#include "parallel/registered_backends.hpp"
#include "pool/queued_task.hpp"
#include "pool/task_runner.hpp"

namespace crew {
namespace detail {

namespace {

struct Registry {
    std::mutex mutex;
    std::map<std::string, ParallelBackendFactory> factories;
};

Registry& registry() {
    static Registry* const registered = new Registry;  // used until exit, by any thread
    return *registered;
}

}  // namespace

// A batch given to the backend. Its transport waits, before it goes, until every batch it gave
// has been answered: a backend's thread may still hold the callback after answering.
struct BatchInFlight {
    BackendTransport* transport;
    QueuedTask task;
    std::atomic<bool> answered{false};
};

// Sends each task to the backend's apply_async as the bytes of its message, and hands the replies
// that come back, on whichever threads, to the tasks' sinks, one at a time.
class BackendTransport final : public TaskTransport {
  public:
    BackendTransport(std::string name, std::shared_ptr<ParallelBackendBase> backend)
        : name_(std::move(name)),
          backend_(std::move(backend)),
          workers_(std::max(backend_->effective_n_jobs(), 1)) {}
    ~BackendTransport() override { join(); }

    int processes() const noexcept override { return workers_; }

    void close() override { closed_.store(true); }
    // What was sent runs on in the backend; only its results are waited for.
    void terminate() override { close(); }
    void join() override {
        std::unique_lock lock(mutex_);
        answered_.wait(lock, [&] { return out_ == 0; });
    }
    bool closed() const noexcept override { return closed_.load(); }

    // Once a batch: BatchCallback sees to it.
    void answer(BatchInFlight& batch, const std::vector<std::byte>* reply,
                std::exception_ptr error) {
        QueuedTask& task = batch.task;
        {
            const std::lock_guard one_sink_at_a_time(sinks_mutex_);
            if (reply != nullptr) {
                try {
                    deliver(task, *reply);
                } catch (...) {
                    error = std::current_exception();
                }
            }
            if (error) task.sink->failed(task.first, task.count, error);
        }
        // The last this transport is touched for the batch: once out_ is 0 it may go.
        const std::lock_guard lock(mutex_);
        if (--out_ == 0) answered_.notify_all();
    }

  protected:
    QueuedTask make_task(Writer& task, std::uint64_t first, std::uint32_t count,
                         std::shared_ptr<TaskSink> sink) const override {
        if (closed()) {
            throw Error(fmt::format(
                "crew: the Parallel of backend '{}' has ended; it takes no new calls", name_));
        }
        if (!task.attached_fds().empty()) {
            throw Error(fmt::format(
                "crew::Parallel: an argument carries a file descriptor (a Queue, Lock, Event, "
                "Value, Pipe end or Array), which the backend '{}' cannot carry: it sends bytes "
                "only; pass plain values, or use the processes backend",
                name_));
        }
        return QueuedTask{.message = TaskMessage(task),
                          .first = first,
                          .count = count,
                          .sink = std::move(sink),
                          .end_call = count};
    }

    void hand_over(std::span<QueuedTask> tasks) override {
        for (QueuedTask& task : tasks) {
            if (!task.sink->starting()) continue;  // cancelled: the sink has heard
            task.id = next_task_id_++;
            const TaskHeader header{.id = task.id,
                                    .begin_call = 0,
                                    .end_call = task.count,
                                    .stop_at_failure = task.sink->stops_at_first_failure()};
            write_header(std::span(task.message.data(), task.message.size()), header);
            const auto bytes = task.message.bytes();
            std::vector<std::byte> message(bytes.begin(), bytes.end());
            auto batch = std::make_shared<BatchInFlight>(this, std::move(task));
            {
                const std::lock_guard lock(mutex_);
                ++out_;
            }
            try {
                backend_->apply_async(std::move(message), BatchCallback(batch));
            } catch (...) {
                // Not sent: its calls fail with what the backend threw, as the batch's outcome.
                if (!batch->answered.exchange(true)) {
                    answer(*batch, nullptr, std::current_exception());
                }
            }
        }
    }

  private:
    void deliver(QueuedTask& task, const std::vector<std::byte>& reply) {
        const std::span<const std::byte> bytes(reply);
        if (bytes.size() < sizeof(ReplyHeader)) {
            throw Error(fmt::format(
                "crew: the backend '{}' answered a batch with {} bytes, too few for what "
                "crew::run_batch returns",
                name_, bytes.size()));
        }
        const auto header = read_header<ReplyHeader>(bytes);
        if (header.task_id != task.id) {
            throw Error(fmt::format(
                "crew: the backend '{}' answered a batch with the reply to another one", name_));
        }
        const auto body = bytes.subspan(sizeof header);
        if (header.kind == ReplyKind::failed) {
            Reader reader(body);
            task.sink->failed(task.first, task.count, decode_exception(reader));
            return;
        }
        if (header.kind != ReplyKind::ran) {
            throw Error(
                fmt::format("crew: the backend '{}' answered a batch with a reply of no "
                            "known kind",
                            name_));
        }
        const TaskResults results(body);
        if (results.size() != task.count) {
            throw Error(fmt::format(
                "crew: the backend '{}' answered a batch with more or fewer results than calls",
                name_));
        }
        task.sink->completed(task.first, results, std::chrono::nanoseconds(header.busy_ns));
    }

    const std::string name_;
    const std::shared_ptr<ParallelBackendBase> backend_;
    const int workers_;
    std::atomic<bool> closed_{false};
    std::uint64_t next_task_id_ = 1;  // tasks are handed over by one thread at a time
    std::mutex sinks_mutex_;
    std::mutex mutex_;
    std::condition_variable answered_;
    std::int64_t out_ = 0;  // sent, not yet answered
};

std::shared_ptr<TaskTransport> make_backend_transport(const std::string& name, int n_jobs) {
    ParallelBackendFactory factory;
    {
        Registry& registered = registry();
        const std::lock_guard lock(registered.mutex);
        const auto found = registered.factories.find(name);
        if (found == registered.factories.end()) {
            std::string names;
            for (const auto& [known, ignored] : registered.factories) names += ", " + known;
            throw Error(fmt::format(
                "crew::Parallel: no backend is named '{}'; the backends are processes, threads, "
                "serial{}; register another with crew::register_parallel_backend",
                name, names));
        }
        factory = found->second;
    }
    std::shared_ptr<ParallelBackendBase> backend = factory(n_jobs);
    if (!backend) {
        throw Error(fmt::format(
            "crew::Parallel: the factory of the backend '{}' returned no backend", name));
    }
    return std::make_shared<BackendTransport>(name, std::move(backend));
}

}  // namespace detail

namespace {

void answer_once(detail::BatchInFlight& batch) {
    if (batch.answered.exchange(true)) {
        throw Error(
            "crew: a backend called the callback of a batch twice; a batch is answered once");
    }
}

}  // namespace

void BatchCallback::operator()(std::vector<std::byte> reply) const {
    answer_once(*batch_);
    batch_->transport->answer(*batch_, &reply, nullptr);
}

void BatchCallback::operator()(std::exception_ptr error) const {
    if (!error) {
        throw Error("crew: a batch's callback was given an empty exception_ptr; give the error");
    }
    answer_once(*batch_);
    batch_->transport->answer(*batch_, nullptr, std::move(error));
}

void register_parallel_backend(const std::string& name, ParallelBackendFactory factory) {
    if (ParallelBackend(name).built_in()) {
        throw Error(fmt::format(
            "crew::register_parallel_backend: '{}' names a built-in backend; choose another name",
            name));
    }
    if (!factory) {
        throw Error(fmt::format(
            "crew::register_parallel_backend: the factory given for '{}' is empty", name));
    }
    detail::Registry& registered = detail::registry();
    const std::lock_guard lock(registered.mutex);
    registered.factories[name] = std::move(factory);
}

std::vector<std::byte> run_batch(std::span<const std::byte> batch) {
    using namespace detail;
    if (batch.size() < sizeof(TaskHeader)) {
        throw Error(fmt::format(
            "crew::run_batch: {} bytes are too few for a batch a Parallel wrote", batch.size()));
    }
    const auto header = read_header<TaskHeader>(batch);
    if (header.kind != TaskKind::run || header.descriptors != 0 ||
        header.begin_call > header.end_call) {
        throw Error("crew::run_batch: these bytes are not a batch a Parallel wrote");
    }
    // The chunk's calls read which of them to make from running_task, on this thread.
    WorkerProgress progress;
    struct Running {
        RunningTask outer;
        ~Running() { running_task = outer; }
    } running{std::exchange(running_task, RunningTask{.begin_call = header.begin_call,
                                                      .end_call = header.end_call,
                                                      .progress = &progress,
                                                      .stop_at_failure = header.stop_at_failure})};
    Writer reply;
    const auto [kind, busy] = run_calls(batch.subspan(sizeof header), {}, reply);
    const ReplyHeader done{
        .task_id = header.id, .busy_ns = static_cast<std::uint64_t>(busy.count()), .kind = kind};
    reply.overwrite(0, &done, sizeof done);
    const auto bytes = reply.bytes();
    return std::vector<std::byte>(bytes.begin(), bytes.end());
}

}  // namespace crew
