// The libpq functions brig uses, loaded with dlopen on first use instead of linked.
//
// Why: linking libpq makes every brig process map it and what it pulls in (OpenSSL,
// Kerberos, LDAP, ~25 libraries), which measured ~7 ms of start-up: more than `brig exec`
// itself needs. Only processes that open a postgresql:// store pay for loading it now.
//
// Each function below has libpq's own signature and forwards to the loaded one. When
// libpq.so.5 cannot be loaded, connecting returns NULL, and the calls on a NULL connection
// or result behave as libpq's do (PQstatus(NULL) is CONNECTION_BAD, ...), with
// PQerrorMessage(NULL) saying why the library could not be loaded.
#include <dlfcn.h>
#include <libpq-fe.h>

#include <mutex>
#include <string>

namespace {

#define BRIG_LIBPQ_FUNCTIONS(X)                                                        \
  X(PQconnectdb, PGconn*, (const char*))                                               \
  X(PQconnectdbParams, PGconn*, (const char* const*, const char* const*, int))         \
  X(PQfinish, void, (PGconn*))                                                         \
  X(PQstatus, ConnStatusType, (const PGconn*))                                         \
  X(PQtransactionStatus, PGTransactionStatusType, (const PGconn*))                     \
  X(PQsocket, int, (const PGconn*))                                                    \
  X(PQerrorMessage, char*, (const PGconn*))                                            \
  X(PQsetNoticeProcessor, PQnoticeProcessor, (PGconn*, PQnoticeProcessor, void*))      \
  X(PQexec, PGresult*, (PGconn*, const char*))                                         \
  X(PQexecParams, PGresult*,                                                           \
    (PGconn*, const char*, int, const Oid*, const char* const*, const int*, const int*, int)) \
  X(PQprepare, PGresult*, (PGconn*, const char*, const char*, int, const Oid*))        \
  X(PQsendQueryParams, int,                                                            \
    (PGconn*, const char*, int, const Oid*, const char* const*, const int*, const int*, int)) \
  X(PQsendQueryPrepared, int,                                                          \
    (PGconn*, const char*, int, const char* const*, const int*, const int*, int))      \
  X(PQgetResult, PGresult*, (PGconn*))                                                 \
  X(PQresultStatus, ExecStatusType, (const PGresult*))                                 \
  X(PQresultErrorMessage, char*, (const PGresult*))                                    \
  X(PQresultErrorField, char*, (const PGresult*, int))                                 \
  X(PQntuples, int, (const PGresult*))                                                 \
  X(PQftype, Oid, (const PGresult*, int))                                              \
  X(PQcmdTuples, char*, (PGresult*))                                                   \
  X(PQgetvalue, char*, (const PGresult*, int, int))                                    \
  X(PQgetlength, int, (const PGresult*, int, int))                                     \
  X(PQgetisnull, int, (const PGresult*, int, int))                                     \
  X(PQclear, void, (PGresult*))

struct Libpq {
#define BRIG_DECLARE(name, ret, args) ret(*name) args = nullptr;
  BRIG_LIBPQ_FUNCTIONS(BRIG_DECLARE)
#undef BRIG_DECLARE
  bool loaded = false;
  std::string error;
};

const Libpq& Lib() {
  static Libpq lib;
  static std::once_flag once;
  std::call_once(once, [] {
    void* handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      lib.error = std::string("PostgreSQL client library libpq.so.5 could not be loaded (install libpq5): ") +
                  (why ? why : "unknown error") + "\n";
      return;
    }
    bool all = true;
#define BRIG_RESOLVE(name, ret, args) \
  all = all && (lib.name = reinterpret_cast<ret(*) args>(dlsym(handle, #name))) != nullptr;
    BRIG_LIBPQ_FUNCTIONS(BRIG_RESOLVE)
#undef BRIG_RESOLVE
    if (!all) {
      lib.error = "libpq.so.5 lacks functions brig needs (too old?)\n";
      return;
    }
    lib.loaded = true;
  });
  return lib;
}

}  // namespace

extern "C" {

PGconn* PQconnectdb(const char* conninfo) { return Lib().loaded ? Lib().PQconnectdb(conninfo) : nullptr; }
PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values, int expand_dbname) {
  return Lib().loaded ? Lib().PQconnectdbParams(keywords, values, expand_dbname) : nullptr;
}
void PQfinish(PGconn* conn) {
  if (conn && Lib().loaded) Lib().PQfinish(conn);
}
ConnStatusType PQstatus(const PGconn* conn) {
  return conn && Lib().loaded ? Lib().PQstatus(conn) : CONNECTION_BAD;
}
PGTransactionStatusType PQtransactionStatus(const PGconn* conn) {
  return conn && Lib().loaded ? Lib().PQtransactionStatus(conn) : PQTRANS_UNKNOWN;
}
int PQsocket(const PGconn* conn) { return conn && Lib().loaded ? Lib().PQsocket(conn) : -1; }
char* PQerrorMessage(const PGconn* conn) {
  if (conn && Lib().loaded) return Lib().PQerrorMessage(conn);
  static std::string message;
  static std::once_flag once;
  std::call_once(once, [] { message = Lib().loaded ? "connection pointer is NULL\n" : Lib().error; });
  return const_cast<char*>(message.c_str());
}
PQnoticeProcessor PQsetNoticeProcessor(PGconn* conn, PQnoticeProcessor proc, void* arg) {
  return conn && Lib().loaded ? Lib().PQsetNoticeProcessor(conn, proc, arg) : nullptr;
}
PGresult* PQexec(PGconn* conn, const char* query) {
  return conn && Lib().loaded ? Lib().PQexec(conn, query) : nullptr;
}
PGresult* PQexecParams(PGconn* conn, const char* command, int n, const Oid* types, const char* const* values,
                       const int* lengths, const int* formats, int result_format) {
  return conn && Lib().loaded ? Lib().PQexecParams(conn, command, n, types, values, lengths, formats, result_format)
                              : nullptr;
}
PGresult* PQprepare(PGconn* conn, const char* name, const char* query, int n, const Oid* types) {
  return conn && Lib().loaded ? Lib().PQprepare(conn, name, query, n, types) : nullptr;
}
int PQsendQueryParams(PGconn* conn, const char* command, int n, const Oid* types, const char* const* values,
                      const int* lengths, const int* formats, int result_format) {
  return conn && Lib().loaded
             ? Lib().PQsendQueryParams(conn, command, n, types, values, lengths, formats, result_format)
             : 0;
}
int PQsendQueryPrepared(PGconn* conn, const char* name, int n, const char* const* values, const int* lengths,
                        const int* formats, int result_format) {
  return conn && Lib().loaded ? Lib().PQsendQueryPrepared(conn, name, n, values, lengths, formats, result_format)
                              : 0;
}
PGresult* PQgetResult(PGconn* conn) { return conn && Lib().loaded ? Lib().PQgetResult(conn) : nullptr; }
// With a loaded library the result calls go straight through: libpq handles NULL results.
ExecStatusType PQresultStatus(const PGresult* res) {
  return Lib().loaded ? Lib().PQresultStatus(res) : PGRES_FATAL_ERROR;
}
char* PQresultErrorMessage(const PGresult* res) {
  return Lib().loaded ? Lib().PQresultErrorMessage(res) : const_cast<char*>("");
}
char* PQresultErrorField(const PGresult* res, int fieldcode) {
  return Lib().loaded ? Lib().PQresultErrorField(res, fieldcode) : nullptr;
}
int PQntuples(const PGresult* res) { return Lib().loaded ? Lib().PQntuples(res) : 0; }
Oid PQftype(const PGresult* res, int field) { return Lib().loaded ? Lib().PQftype(res, field) : 0; }
char* PQcmdTuples(PGresult* res) { return Lib().loaded ? Lib().PQcmdTuples(res) : const_cast<char*>(""); }
char* PQgetvalue(const PGresult* res, int row, int field) {
  return Lib().loaded ? Lib().PQgetvalue(res, row, field) : nullptr;
}
int PQgetlength(const PGresult* res, int row, int field) {
  return Lib().loaded ? Lib().PQgetlength(res, row, field) : 0;
}
int PQgetisnull(const PGresult* res, int row, int field) {
  return Lib().loaded ? Lib().PQgetisnull(res, row, field) : 1;
}
void PQclear(PGresult* res) {
  if (res && Lib().loaded) Lib().PQclear(res);
}

}  // extern "C"
