// A fixed-size pool of PostgreSQL connections. Connections are opened lazily, up to
// `size`; a checkout waits for a free one when all are in use. A connection found broken
// or left inside a transaction on return is closed, and a new one is opened on demand.
// An idle connection that the server closed meanwhile (a restart; libpq still says OK) is
// found at checkout without a round trip (its socket has input: the server's "terminating
// connection" and EOF) and replaced before it is handed out, so a restart between two
// calls costs neither of them. A connection that breaks during a call fails that call
// (Unavailable): whether its statements committed cannot be known there, so nothing is
// retried blindly.
//
// Thread-safety: Checkout may be called from any thread; each PooledConn is used by one
// thread at a time. The pool must outlive every PooledConn it handed out.
#ifndef BRIG_STORE_PG_POOL_H_
#define BRIG_STORE_PG_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/pg_conn.h"

namespace brig::store::pg {

class Pool;

// A checked-out connection, returned to its pool on destruction.
class PooledConn {
 public:
  PooledConn(Pool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
  PooledConn(PooledConn&&) = default;
  ~PooledConn();
  Conn& operator*() { return *conn_; }
  Conn* operator->() { return conn_.get(); }

 private:
  Pool* pool_;
  std::unique_ptr<Conn> conn_;  // null once moved from
};

class Pool {
 public:
  // REQUIRES: options.pool_size >= 1.
  Pool(std::string url, const StoreOptions& options) : url_(std::move(url)), options_(options) {}

  // A connection, opening one if fewer than pool_size exist. Unavailable if a new one
  // cannot be opened; DeadlineExceeded after connect_timeout waiting for a free one.
  StatusOr<PooledConn> Checkout();

 private:
  friend class PooledConn;
  void Return(std::unique_ptr<Conn> conn);

  const std::string url_;
  const StoreOptions options_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Conn>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;  // GUARDED_BY(mu_); idle plus checked out plus being opened
};

}  // namespace brig::store::pg

#endif  // BRIG_STORE_PG_POOL_H_
