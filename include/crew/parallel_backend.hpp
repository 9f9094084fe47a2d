// crew/parallel_backend.hpp: backends of crew::Parallel beyond processes, threads and serial,
// registered by name (joblib's register_parallel_backend).
//
//     // Runs each batch on a thread of its own, in this process.
//     class OnThreads : public crew::ParallelBackendBase {
//       public:
//         explicit OnThreads(int n_jobs) : n_jobs_(n_jobs < 0 ? 4 : n_jobs) {}
//         int effective_n_jobs() const override { return n_jobs_; }
//         void apply_async(std::vector<std::byte> batch, crew::BatchCallback done) override {
//             std::thread([batch = std::move(batch), done] { done(crew::run_batch(batch)); })
//                 .detach();
//         }
//       private:
//         int n_jobs_;
//     };
//
//     crew::register_parallel_backend("on-threads",
//                                     [](int n_jobs) { return std::make_shared<OnThreads>(n_jobs);
//                                     });
//     crew::Parallel parallel({.n_jobs = 4, .backend = "on-threads"});
//     std::vector<double> roots = parallel(crew::delayed(root), xs);
//
// A backend only carries bytes. crew cuts the calls into batches, writes each as a message, and
// gives it to the backend's apply_async, which has crew::run_batch(batch) called in a process of
// this same program (one that called crew::init; on this machine or another) and hands run_batch's
// reply to the callback. crew reads the replies, puts the results in order, and applies
// Parallel's rules: the first failure stops the dispatch and is thrown, with its input's index.
// apply_async is called on the thread that makes the Parallel call and should return soon; the
// callback may be called on any thread, once a batch. A batch the backend cannot run (its worker
// was lost) goes to the callback as an exception instead, and its calls fail with it.
//
// What a backend cannot carry: file descriptors. An argument that is a shared object (a Queue,
// Lock, Event, Value, Pipe end or Array) makes the Parallel call throw crew::Error; a large
// std::span<const T> argument travels in each message instead of in shared memory (max_nbytes
// does not apply). ParallelOptions::timeout is the backend's to enforce: given with a registered
// backend it is an error. n_jobs reaches the factory as asked (-1 for "all you have"); 1 runs in
// the caller, as for every backend, and so does a Parallel made inside a batch (no nesting).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace crew {

namespace detail {
class BackendTransport;
struct BatchInFlight;
}  // namespace detail

// Where the outcome of one batch goes: called once, from any thread.
class BatchCallback {
  public:
    // The reply crew::run_batch returned for the batch.
    void operator()(std::vector<std::byte> reply) const;
    // The batch could not be run (its worker was lost, say): each of its calls fails with error.
    void operator()(std::exception_ptr error) const;

  private:
    friend class detail::BackendTransport;
    explicit BatchCallback(std::shared_ptr<detail::BatchInFlight> batch)
        : batch_(std::move(batch)) {}
    std::shared_ptr<detail::BatchInFlight> batch_;
};

// joblib's ParallelBackendBase: a place a Parallel's batches run.
class ParallelBackendBase {
  public:
    virtual ~ParallelBackendBase() = default;
    // How many batches run at once: crew keeps about twice as many sent (pre_dispatch) and cuts
    // the calls into batches that keep them all busy.
    virtual int effective_n_jobs() const = 0;
    // Has crew::run_batch(batch) called in a process of this program, and its reply (or what
    // kept the batch from running) given to done.
    virtual void apply_async(std::vector<std::byte> batch, BatchCallback done) = 0;
};

// Makes the backend for a Parallel of n_jobs (as asked: -1 for all, -2 all but one, ...).
using ParallelBackendFactory = std::function<std::shared_ptr<ParallelBackendBase>(int n_jobs)>;

// Names a backend for ParallelOptions::backend and parallel_config. Registering a name again
// replaces its factory for the Parallels made after; the built-in names (processes, threads,
// serial, and joblib's loky, threading, sequential) cannot be taken.
void register_parallel_backend(const std::string& name, ParallelBackendFactory factory);

// Runs a batch a Parallel gave a backend, in the calling thread, and returns the reply for the
// backend's callback: the calls' results, or the exceptions they threw. Throws crew::Error for
// bytes that are not such a batch.
std::vector<std::byte> run_batch(std::span<const std::byte> batch);

}  // namespace crew
