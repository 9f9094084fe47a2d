#include "crew/detail/task_transport.hpp"

#include <utility>

#include "pool/queued_task.hpp"

namespace crew::detail {

void TaskTransport::submit(Writer& task, std::uint64_t first, std::uint32_t count,
                           std::shared_ptr<TaskSink> sink) {
    QueuedTask queued = make_task(task, first, count, std::move(sink));
    hand_over({&queued, 1});
}

TaskTransport::Batch::Batch(TaskTransport& transport) : transport_(transport) {}

TaskTransport::Batch::~Batch() = default;

void TaskTransport::Batch::add(Writer& task, std::uint64_t first, std::uint32_t count,
                               std::shared_ptr<TaskSink> sink) {
    tasks_.push_back(transport_.make_task(task, first, count, std::move(sink)));
    if (tasks_.size() == tasks_in_a_batch) submit();
}

void TaskTransport::Batch::submit() {
    if (tasks_.empty()) return;
    transport_.hand_over(tasks_);
    tasks_.clear();
}

}  // namespace crew::detail
