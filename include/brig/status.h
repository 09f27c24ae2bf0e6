// Status and StatusOr<T>: how brig's API reports failure without exceptions.
#ifndef BRIG_STATUS_H_
#define BRIG_STATUS_H_

#include <string>
#include <utility>
#include <variant>

namespace brig {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  // The caller passed something malformed (bad thread_id, bad path, ...).
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  // A bug or a broken invariant in brig or in a store it reads.
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  // A size or count limit was reached (file too large, quota, ...).
  static Status ResourceExhausted(std::string msg) { return Status(Code::kResourceExhausted, std::move(msg)); }
  // The named thing (session, file, ...) does not exist.
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  // The thing to create exists already.
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }
  // Someone else changed the data first (e.g. a version check failed); nothing was changed.
  static Status Conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }
  // A service brig needs (database, file system) cannot be reached or used; retrying may help.
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  // The system is not in a state the call needs (e.g. a store written by a newer brig).
  static Status FailedPrecondition(std::string msg) { return Status(Code::kFailedPrecondition, std::move(msg)); }
  // A time limit passed before the call could finish.
  static Status DeadlineExceeded(std::string msg) { return Status(Code::kDeadlineExceeded, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsInternal() const { return code_ == Code::kInternal; }
  bool IsResourceExhausted() const { return code_ == Code::kResourceExhausted; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  bool IsConflict() const { return code_ == Code::kConflict; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsFailedPrecondition() const { return code_ == Code::kFailedPrecondition; }
  bool IsDeadlineExceeded() const { return code_ == Code::kDeadlineExceeded; }
  const std::string& message() const { return message_; }
  // The same error with `prefix` put before its message (context such as a file name).
  Status WithPrefix(const std::string& prefix) const {
    return ok() ? *this : Status(code_, prefix + message_);
  }
  // "NotFound: session 'x' does not exist"; "OK" when ok().
  std::string ToString() const {
    static const char* const kNames[] = {"OK",       "InvalidArgument", "Internal",
                                         "ResourceExhausted", "NotFound", "AlreadyExists",
                                         "Conflict", "Unavailable",     "FailedPrecondition",
                                         "DeadlineExceeded"};
    std::string s = kNames[static_cast<int>(code_)];
    if (!ok()) s += ": " + message_;
    return s;
  }

 private:
  enum class Code {
    kOk,
    kInvalidArgument,
    kInternal,
    kResourceExhausted,
    kNotFound,
    kAlreadyExists,
    kConflict,
    kUnavailable,
    kFailedPrecondition,
    kDeadlineExceeded,
  };
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {}  // REQUIRES: !status.ok()
  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: ok()
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  // OK if ok(), else the error.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace brig

#endif  // BRIG_STATUS_H_
