#include "store/pg_conn.h"

#include <endian.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

namespace brig::store::pg {
namespace {

// Type OIDs from pg_type.h (stable across PostgreSQL versions).
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23;

// PostgreSQL's SQLSTATE classes, mapped to what a caller can act on.
Status FromResult(const PGresult* r, PGconn* c, std::string_view what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (msg.empty()) msg = PQerrorMessage(c);
  msg = std::string(what) + ": " + msg;
  const std::string_view code = state ? state : "";
  if (code.empty() || PQstatus(c) != CONNECTION_OK) return Status::Unavailable(msg);
  if (code == "23505") return Status::AlreadyExists(msg);
  if (code == "23503") return Status::NotFound(msg);
  if (code.substr(0, 2) == "23" || code.substr(0, 2) == "22") return Status::InvalidArgument(msg);
  if (code == "57014" || code == "55P03") return Status::DeadlineExceeded(msg);  // statement_timeout, lock_timeout
  if (code == "40001" || code == "40P01") return Status::Conflict(msg);
  if (code == "54000") return Status::ResourceExhausted(msg);
  if (code.substr(0, 2) == "08" || code.substr(0, 2) == "53" || code.substr(0, 2) == "57") {
    return Status::Unavailable(msg);
  }
  return Status::Internal(msg);
}

}  // namespace

Params& Params::Text(std::string_view v) {
  owned_.push_back(std::make_unique<std::string>(v));
  values_.push_back(owned_.back()->c_str());
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::Int(int64_t v) { return Text(std::to_string(v)); }

Params& Params::Bytes(std::string_view v) {
  values_.push_back(v.empty() ? "" : v.data());
  lengths_.push_back(static_cast<int>(v.size()));
  formats_.push_back(1);
  return *this;
}

int64_t Result::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  const char* p = PQgetvalue(r_.get(), row, col);
  switch (PQftype(r_.get(), col)) {
    case kInt8Oid: {
      uint64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<int64_t>(be64toh(v));
    }
    case kInt4Oid: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<int32_t>(be32toh(v));
    }
    case kInt2Oid: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<int16_t>(be16toh(v));
    }
    default:
      return 0;  // a query bug; cast to bigint in SQL
  }
}

bool Result::Bool(int row, int col) const {
  return !IsNull(row, col) && PQftype(r_.get(), col) == kBoolOid && PQgetvalue(r_.get(), row, col)[0] != 0;
}

std::string Result::Bytes(int row, int col) const {
  return std::string(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col));
}

int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::stoll(n) : 0;
}

StatusOr<std::unique_ptr<Conn>> Conn::Open(const std::string& url, const StoreOptions& options) {
  const std::string timeout =
      std::to_string(std::max<int64_t>(1, (options.connect_timeout.count() + 999) / 1000));
  // connect_timeout first: settings in the URL, expanded from dbname, override it.
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), url.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Status::Unavailable("PostgreSQL: out of memory creating a connection");
  auto conn = std::unique_ptr<Conn>(new Conn(c));
  // Server NOTICEs ("relation already exists, skipping") are not for brig's stderr.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  if (PQstatus(c) != CONNECTION_OK) {
    std::string why = PQerrorMessage(c);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Status::Unavailable("cannot connect to the PostgreSQL store: " + why);
  }
  Params p;
  p.Text(std::to_string(options.statement_timeout.count()));
  if (Status s = conn->Exec("SELECT set_config('statement_timeout', $1, false)", p, "cannot set statement_timeout")
                     .status();
      !s.ok()) {
    return s;
  }
  return conn;
}

namespace {

// Statements worth preparing once per connection: the ones brig runs again and again. Not
// transaction control (BEGIN, COMMIT...), which PostgreSQL does not prepare.
bool Preparable(const char* sql) {
  for (const char* verb : {"SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "}) {
    if (std::strncmp(sql, verb, std::strlen(verb)) == 0) return true;
  }
  return false;
}

}  // namespace

StatusOr<Result> Conn::Exec(const char* sql, const Params& params, std::string_view what) {
  // What PQexecPrepared / PQexecParams do, in the two halves a lock's release uses apart.
  if (Status sent = Send(sql, params, what); !sent.ok()) return sent;
  return Receive(what);
}

Status Conn::Send(const char* sql, const Params& params, std::string_view what) {
  const std::string* name = Preparable(sql) ? Prepared(sql, params.size()) : nullptr;
  const int sent = name ? PQsendQueryPrepared(c_, name->c_str(), params.size(), params.values(), params.lengths(),
                                              params.formats(), /*resultFormat=binary*/ 1)
                        : PQsendQueryParams(c_, sql, params.size(), nullptr, params.values(), params.lengths(),
                                            params.formats(), /*resultFormat=binary*/ 1);
  // PQsendQuery* flushes what fits in the socket (blocking mode: all of a short statement).
  if (sent != 1) return FromResult(nullptr, c_, what);
  return Status::Ok();
}

StatusOr<Result> Conn::Receive(std::string_view what) {
  // One statement: its result, then null. The last result is the one that counts (an error
  // ends the statement).
  PGresult* last = nullptr;
  while (PGresult* r = PQgetResult(c_)) {
    PQclear(last);
    last = r;
  }
  Result result(last);
  const ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return result;
  return FromResult(last, c_, what);
}

const std::string* Conn::Prepared(const char* sql, int params) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return &it->second;
  const std::string name = "brig_" + std::to_string(prepared_.size() + 1);
  PGresult* r = PQprepare(c_, name.c_str(), sql, params, nullptr);
  const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  // Not prepared (inside a failed transaction, say): run unprepared; the next call tries again.
  if (!ok) return nullptr;
  return &prepared_.emplace(sql, name).first->second;
}

Status Conn::ExecScript(const char* sql, std::string_view what) {
  PGresult* r = PQexec(c_, sql);
  Result result(r);
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
  return FromResult(r, c_, what);
}

// An idle connection has nothing to read: the server speaks only when asked (brig uses no
// LISTEN). Input on one means the server ended it (a restart or a terminated backend sends
// "terminating connection" then closes; libpq's status says OK until a call finds out), or
// something brig does not expect: either way it is not reused. One poll(2), no round trip,
// and nothing is sent, so no statement can have run twice.
bool Conn::StillOpenWhileIdle() const {
  if (!healthy() || PQsocket(c_) < 0) return false;
  pollfd p{PQsocket(c_), POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n == 0;
}

}  // namespace brig::store::pg
