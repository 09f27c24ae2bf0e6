// Executions on a pool of threads in this process, over one brig::Sessions (executor.h).
#ifndef BRIG_SERVER_IN_PROCESS_EXECUTOR_H_
#define BRIG_SERVER_IN_PROCESS_EXECUTOR_H_

#include <memory>

#include "server/executor.h"

namespace brig::server {

// Borrows `sessions`, which must outlive the executor. `threads` >= 1 run executions;
// at most `max_queue` wait (then ResourceExhausted).
std::unique_ptr<Executor> MakeInProcessExecutor(Sessions& sessions, int threads, size_t max_queue);

}  // namespace brig::server

#endif  // BRIG_SERVER_IN_PROCESS_EXECUTOR_H_
