// parallel/registered_backends.hpp: the backends crew::register_parallel_backend names, as the
// transports a Parallel's Submitter sends its batches through.
#pragma once

#include <memory>
#include <string>

#include "crew/detail/task_transport.hpp"

namespace crew::detail {

// A transport over a new backend of the registered name, for n_jobs as asked; throws crew::Error
// naming the registered backends when there is none of that name.
std::shared_ptr<TaskTransport> make_backend_transport(const std::string& name, int n_jobs);

}  // namespace crew::detail
