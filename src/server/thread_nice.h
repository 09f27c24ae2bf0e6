// Execution threads run at a lower priority than the rest of the server.
//
// A durable execution passes through short steps on other threads (the HTTP I/O thread, the
// worker's frame reader, the supervisor's committer) between the long ones that run guest
// code. Those steps waited their turn behind guest code on 2 cores; with the execution
// threads at nice 6 they come first, and 32 connections over 64 sessions ran ~6-12% more
// durable executions per second (bench/RESULTS.md, stop 26). Guest code that spins on every
// execution thread also no longer competes as an equal with the server's own work.
#ifndef BRIG_SERVER_THREAD_NICE_H_
#define BRIG_SERVER_THREAD_NICE_H_

#include <sys/resource.h>
#include <unistd.h>

namespace brig::server {

// Lowers the calling thread's priority to `nice` (Linux priorities are per thread). Best
// effort: raising the value needs no privilege, and a failure leaves the thread as it was.
// REQUIRES: 0 <= nice <= 19.
inline void SetThisThreadNice(int nice) {
  if (nice > 0) (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
}

}  // namespace brig::server

#endif  // BRIG_SERVER_THREAD_NICE_H_
