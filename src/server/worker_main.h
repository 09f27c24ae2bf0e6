// The main function of a `brig serve` worker process (`brig __worker`, started by the
// supervisor in worker_pool.cc; not for people to run).
//
// It speaks worker_protocol.h on descriptor 3 (a socket to the supervisor): reads its
// Sessions options, opens the store, warms up the process image, answers kReady, then runs
// each kExecute on one of its execution threads through brig::Sessions (which serialises the
// executions of one session), streaming output and answering with the result.
//
// It dies with its supervisor: PR_SET_PDEATHSIG (SIGKILL) and end of file on the socket. On
// SIGTERM it takes no more executions (those waiting get Unavailable), finishes the running
// ones and exits 0. SIGINT is ignored: a terminal's ^C reaches the whole process group, and
// the supervisor decides. A malformed frame from the supervisor ends it (exit status 2).
#ifndef BRIG_SERVER_WORKER_MAIN_H_
#define BRIG_SERVER_WORKER_MAIN_H_

namespace brig::server {

// argv[0] is the program; nothing else is read from the command line. Returns the exit
// status (usually it ends the process itself with _exit).
int WorkerMain(int argc, char** argv);

}  // namespace brig::server

#endif  // BRIG_SERVER_WORKER_MAIN_H_
