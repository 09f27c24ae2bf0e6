// A Status's code as one byte and back, for the binary formats that carry an error between
// processes (the worker protocol, relayed saves). Header-only; the bytes never change
// meaning: 0 is OK, 1..9 the codes in brig/status.h's order.
#ifndef BRIG_UTIL_STATUS_CODE_H_
#define BRIG_UTIL_STATUS_CODE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "brig/status.h"

namespace brig {

inline uint8_t StatusCodeByte(const Status& s) {
  if (s.IsInvalidArgument()) return 1;
  if (s.IsInternal()) return 2;
  if (s.IsResourceExhausted()) return 3;
  if (s.IsNotFound()) return 4;
  if (s.IsAlreadyExists()) return 5;
  if (s.IsConflict()) return 6;
  if (s.IsUnavailable()) return 7;
  if (s.IsFailedPrecondition()) return 8;
  if (s.IsDeadlineExceeded()) return 9;
  return 0;
}

// The error `code` names, with `message`; nullopt for 0 (OK) or a byte that names no code.
inline std::optional<Status> StatusFromCodeByte(uint8_t code, std::string message) {
  switch (code) {
    case 1: return Status::InvalidArgument(std::move(message));
    case 2: return Status::Internal(std::move(message));
    case 3: return Status::ResourceExhausted(std::move(message));
    case 4: return Status::NotFound(std::move(message));
    case 5: return Status::AlreadyExists(std::move(message));
    case 6: return Status::Conflict(std::move(message));
    case 7: return Status::Unavailable(std::move(message));
    case 8: return Status::FailedPrecondition(std::move(message));
    case 9: return Status::DeadlineExceeded(std::move(message));
  }
  return std::nullopt;
}

}  // namespace brig

#endif  // BRIG_UTIL_STATUS_CODE_H_
