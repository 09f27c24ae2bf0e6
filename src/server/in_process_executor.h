// Executions on a pool of threads in this process, over one brig::Sessions (executor.h).
// For tests and `--workers 0`: no crash containment (a crash in the host code of a guest
// call takes the process with it), and LiveSessions() is the Sessions' own count.
#ifndef BRIG_SERVER_IN_PROCESS_EXECUTOR_H_
#define BRIG_SERVER_IN_PROCESS_EXECUTOR_H_

#include <cstddef>
#include <memory>

#include "server/executor.h"

namespace brig::server {

// Borrows `sessions`, which must outlive the executor. `threads` (at least 1) run
// executions; at most `max_queue` more wait for a thread (past it ResourceExhausted).
// on_output is called on the executing thread, from inside the guest call (keep it short:
// the execution's timeout waits for it); on_done on the executing thread, or on the
// caller's for an execution refused at once. Shutdown(grace) lets the accepted executions
// run for up to `grace`, then fails the queued ones, and the running ones too: those
// cannot be stopped in-process, so their threads are left (detached) to end on their own,
// with their callbacks cleared (they reach no one), and Shutdown returns false: `sessions`
// must then stay alive until the process exits.
std::unique_ptr<Executor> MakeInProcessExecutor(Sessions& sessions, int threads, size_t max_queue);

}  // namespace brig::server

#endif  // BRIG_SERVER_IN_PROCESS_EXECUTOR_H_
