// Result<T>: a value or a vfs::Error (no exceptions for expected failures).
#ifndef BRIG_VFS_RESULT_H_
#define BRIG_VFS_RESULT_H_

#include <cassert>
#include <utility>
#include <variant>

#include "vfs/error.h"

namespace brig::vfs {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error e) : v_(e) { assert(e != Error::kOk); }  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  // REQUIRES: ok().
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  // Error::kOk when ok().
  Error error() const { return ok() ? Error::kOk : std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace brig::vfs

#endif
