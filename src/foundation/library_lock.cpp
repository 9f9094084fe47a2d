#include "foundation/library_lock.hpp"

#include <pthread.h>

#include <new>

namespace crew::detail {
namespace {

// Never destroyed: static objects may take it after main returns.
std::recursive_mutex* lock = nullptr;

void create() {
    lock = new std::recursive_mutex;
    pthread_atfork([] { lock->lock(); }, [] { lock->unlock(); },
                   // The owner recorded in the inherited lock is a thread of the parent, so the
                   // child cannot unlock it: it gets a new one.
                   [] { new (lock) std::recursive_mutex; });
}

}  // namespace

std::recursive_mutex& library_mutex() {
    static std::once_flag created;
    std::call_once(created, create);
    return *lock;
}

void on_fork_child(void (*reset)()) {
    (void)library_mutex();  // its handler first: child handlers run in the order registered
    pthread_atfork(nullptr, nullptr, reset);
}

}  // namespace crew::detail
