// Thin RAII over libpq: one connection, one result, parameter lists, and the mapping from
// PostgreSQL errors to Status. Every statement with values goes through Exec with
// parameters (prepared once per connection: PQprepare, then PQsendQueryPrepared); SQL text is
// never built from values. Results come back in binary format and are read by column type.
// Internal to src/store.
//
// Thread-safety: a PgConn is used by one thread at a time (the pool hands it out).
#ifndef BRIG_STORE_PG_CONN_H_
#define BRIG_STORE_PG_CONN_H_

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace brig::store::pg {

// Parameters of one statement: $1, $2, ... in the order added. Text values are sent as
// text, integers as decimal text (the server casts), bytes in binary.
class Params {
 public:
  Params& Text(std::string_view v);
  Params& Int(int64_t v);
  Params& Bytes(std::string_view v);  // views must outlive the Exec call

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::vector<std::unique_ptr<std::string>> owned_;  // stable storage for Text/Int copies
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// A result set; columns are read by their declared type (int2/4/8, bool, text, bytea).
class Result {
 public:
  explicit Result(PGresult* r) : r_(r, PQclear) {}
  int rows() const { return PQntuples(r_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col); }
  int64_t Int(int row, int col) const;  // NULL reads as 0
  bool Bool(int row, int col) const;
  std::string Bytes(int row, int col) const;  // text or bytea, raw
  int64_t affected() const;                   // rows changed by INSERT/UPDATE/DELETE

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

class Conn {
 public:
  // Connects to `url` (a libpq URI or conninfo) and sets statement_timeout. Unavailable,
  // with libpq's reason, if the server cannot be reached or refuses.
  static StatusOr<std::unique_ptr<Conn>> Open(const std::string& url, const StoreOptions& options);
  ~Conn() { PQfinish(c_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Runs one statement. `what` prefixes the error message.
  StatusOr<Result> Exec(const char* sql, const Params& params, std::string_view what);
  StatusOr<Result> Exec(const char* sql, std::string_view what) { return Exec(sql, Params(), what); }
  // Exec's two halves: Send writes the statement and returns without waiting for the server;
  // Receive waits for its result. REQUIRES: exactly one Receive after each Send that
  // succeeded, before any other call on this connection.
  Status Send(const char* sql, const Params& params, std::string_view what);
  StatusOr<Result> Receive(std::string_view what);
  // Runs a parameterless script (several statements), e.g. a migration.
  Status ExecScript(const char* sql, std::string_view what);
  // False once the connection is lost: the pool then drops it.
  bool healthy() const { return PQstatus(c_) == CONNECTION_OK; }
  // For a connection left idle (no statement running): false if the server has ended it
  // meanwhile (a restart, a terminated backend), which libpq's status learns only on the
  // next call. Pools check before handing one out, so that the call does not fail for it.
  bool StillOpenWhileIdle() const;
  // Outside any transaction (a failed call may leave one open; ROLLBACK cleans it).
  bool idle() const { return PQtransactionStatus(c_) == PQTRANS_IDLE; }

 private:
  explicit Conn(PGconn* c) : c_(c) {}
  // The name of `sql` prepared on this connection (PQprepare on first use), or null if it
  // could not be prepared. Planning each statement anew was most of the server's work for
  // brig's short statements.
  const std::string* Prepared(const char* sql, int params);

  PGconn* const c_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name
};

// A transaction on one connection: BEGIN now, ROLLBACK unless Commit() succeeded.
class Txn {
 public:
  explicit Txn(Conn& conn) : conn_(conn) { begun_ = conn_.Exec("BEGIN", "cannot begin a transaction").status(); }
  ~Txn() {
    if (begun_.ok() && !done_) (void)conn_.Exec("ROLLBACK", "rollback");
  }
  const Status& Begun() const { return begun_; }
  Status Commit() {
    Status s = conn_.Exec("COMMIT", "commit failed").status();
    done_ = s.ok();
    return s;
  }

 private:
  Conn& conn_;
  Status begun_;
  bool done_ = false;
};

}  // namespace brig::store::pg

#endif  // BRIG_STORE_PG_CONN_H_
