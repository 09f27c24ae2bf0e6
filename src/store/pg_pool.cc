#include "store/pg_pool.h"

namespace brig::store::pg {

PooledConn::~PooledConn() {
  if (conn_) pool_->Return(std::move(conn_));
}

StatusOr<PooledConn> Pool::Checkout() {
  std::unique_lock<std::mutex> lock(mu_);
  // Generous: a checkout waits behind whole statements, each bounded by statement_timeout.
  const auto wait = options_.statement_timeout.count() > 0 ? options_.statement_timeout + options_.connect_timeout
                                                           : std::chrono::milliseconds(3'600'000);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    if (!freed_.wait_until(lock, deadline, [&] { return !idle_.empty() || open_ < std::max(1, options_.pool_size); })) {
      return Status::DeadlineExceeded("no PostgreSQL connection became free in the pool");
    }
    if (idle_.empty()) break;  // a slot is free: open a new connection
    std::unique_ptr<Conn> c = std::move(idle_.back());
    idle_.pop_back();
    if (c->StillOpenWhileIdle()) return PooledConn(this, std::move(c));
    // Closed by the server while idle (e.g. it restarted): dropped, and its slot taken by the
    // next idle one or a new connection, so that the call does not fail for it.
    --open_;
    lock.unlock();
    c.reset();  // PQfinish may write to the socket: not under the lock
    lock.lock();
  }
  ++open_;
  lock.unlock();  // connecting takes a round trip or more; others may proceed meanwhile
  StatusOr<std::unique_ptr<Conn>> c = Conn::Open(url_, options_);
  if (!c.ok()) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return c.status();
  }
  return PooledConn(this, std::move(c.value()));
}

void Pool::Return(std::unique_ptr<Conn> conn) {
  // A connection left mid-transaction (an error path that could not roll back) or broken is
  // not reused.
  const bool keep = conn->healthy() && conn->idle();
  if (!keep) conn.reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (keep) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  freed_.notify_one();
}

}  // namespace brig::store::pg
