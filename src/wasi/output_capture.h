// OutputCapture: a bounded buffer for the guest's stdout or stderr. Bytes past the cap are
// dropped and counted; the guest is still told they were written (so Python keeps going).
// Thread-safety: none; owned by one WasiContext.
#ifndef BRIG_WASI_OUTPUT_CAPTURE_H_
#define BRIG_WASI_OUTPUT_CAPTURE_H_

#include <cstdint>
#include <span>
#include <string>

namespace brig::wasi {

class OutputCapture {
 public:
  explicit OutputCapture(uint64_t cap) : cap_(cap) {}
  // Keeps what fits under the cap, drops the rest. Returns how many bytes it kept: the first
  // ones of `bytes` (what a streaming reader is shown). May throw std::bad_alloc.
  uint64_t Append(std::span<const uint8_t> bytes) {
    uint64_t room = data_.size() < cap_ ? cap_ - data_.size() : 0;
    uint64_t keep = bytes.size() < room ? bytes.size() : room;
    data_.append(reinterpret_cast<const char*>(bytes.data()), keep);
    dropped_ += bytes.size() - keep;
    return keep;
  }
  const std::string& data() const { return data_; }
  bool truncated() const { return dropped_ != 0; }
  uint64_t dropped() const { return dropped_; }
  // Forgets everything captured (e.g. between two executions of one session).
  void Clear() {
    data_.clear();
    dropped_ = 0;
  }

 private:
  uint64_t cap_;
  std::string data_;
  uint64_t dropped_ = 0;
};

}  // namespace brig::wasi

#endif
