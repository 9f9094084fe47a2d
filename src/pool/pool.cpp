#include "crew/pool.hpp"

#include "crew/init.hpp"

namespace crew {

Pool::Pool(PoolOptions options) {
    detail::PoolCoreOptions core{
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
    core_ = std::make_shared<detail::PoolCore>(std::move(core));
}

Pool::~Pool() {
    core_->close();
    core_->join();
}

void Pool::close() {
    core_->close();
}

void Pool::join() {
    core_->join();
}

void Pool::terminate() {
    core_->terminate();
    core_->join();
}

}  // namespace crew
