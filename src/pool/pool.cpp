#include "crew/pool.hpp"

#include "crew/init.hpp"

namespace crew {

namespace detail {

std::shared_ptr<PoolCore> make_pool_core(const PoolOptions& options) {
    PoolCoreOptions core{
        .processes = options.processes == 0 ? cpu_count() : options.processes,
        .initializer = options.initializer.call(),
        .max_tasks_per_child = options.maxtasksperchild,
        .start_method = options.start_method,
        .task_timeout = options.task_timeout,
        .retries = options.retries,
    };
    if (options.maxtasksperchild < 0 || options.retries < 0 || options.task_timeout.count() < 0) {
        throw Error("crew: maxtasksperchild, retries and task_timeout cannot be negative");
    }
    return std::make_shared<PoolCore>(std::move(core));
}

}  // namespace detail

Pool::Pool(PoolOptions options) : submitter_(detail::make_pool_core(options)) {}

Pool::~Pool() {
    submitter_.transport().close();
    submitter_.transport().join();
}

void Pool::close() {
    submitter_.transport().close();
}

void Pool::join() {
    submitter_.transport().join();
}

void Pool::terminate() {
    submitter_.transport().terminate();
    submitter_.transport().join();
}

}  // namespace crew
