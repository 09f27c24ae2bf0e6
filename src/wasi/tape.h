// brig::wasi::Tape: the values a sandbox takes from outside itself while it runs -- clock
// readings, random bytes, the times stamped on files -- recorded during an execution so that
// running the same execution again from the same state gives exactly the same result.
// Everything else the guest sees is a function of the sandbox's own state (its memory, its
// file system, its descriptors), so a recorded execution replays bit for bit: this is how a
// sandbox rolls back to the moment before a failed execution without copying its memory
// before every execution (src/sandbox/transaction.cc).
//
// While replaying, a reading of another kind than the recording holds next, or past its end,
// marks the replay as diverged (and returns the live value): the caller then knows the replay
// is not the recorded execution. A recording is bounded: past its limit it stops growing and
// is marked overflowed (the execution then cannot be replayed; the caller must not rely on it).
//
// Thread-safety: none; owned by one sandbox.
#ifndef BRIG_WASI_TAPE_H_
#define BRIG_WASI_TAPE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace brig::wasi {

class Tape {
 public:
  struct Recording {
    std::string kinds;             // one per reading: 'v' a value, 'b' bytes
    std::vector<uint64_t> values;  // values, and the length of each run of bytes
    std::string bytes;
    size_t size() const { return kinds.size() + values.size() * 8 + bytes.size(); }
  };

  // Readings from now on are appended to *into (which must outlive the recording), up to
  // about `max_bytes`.
  void Record(Recording* into, size_t max_bytes = 16u << 20) {
    mode_ = Mode::kRecording;
    rec_ = into;
    replay_ = nullptr;
    max_bytes_ = max_bytes;
    overflowed_ = false;
  }
  // Readings from now on come from *from, in order.
  void Replay(const Recording* from) {
    mode_ = Mode::kReplaying;
    replay_ = from;
    rec_ = nullptr;
    kind_at_ = value_at_ = bytes_at_ = 0;
    diverged_ = false;
  }
  void Stop() {
    mode_ = Mode::kOff;
    rec_ = nullptr;
    replay_ = nullptr;
  }
  bool replaying() const { return mode_ == Mode::kReplaying; }
  // True if the last recording hit its limit and is incomplete.
  bool overflowed() const { return overflowed_; }
  // True if a replay asked for something the recording did not hold next, or did not use
  // all of it (checked by Finished()).
  bool diverged() const { return diverged_; }
  // At the end of a replay: true if it used exactly what was recorded.
  bool Finished() const {
    return mode_ == Mode::kReplaying && !diverged_ && kind_at_ == replay_->kinds.size();
  }

  // A value read from outside (a clock): returns `live`, recording it, or the recorded one.
  uint64_t Value(uint64_t live) {
    if (mode_ == Mode::kRecording) {
      if (Room(9)) {
        rec_->kinds.push_back('v');
        rec_->values.push_back(live);
      }
    } else if (mode_ == Mode::kReplaying) {
      if (kind_at_ < replay_->kinds.size() && replay_->kinds[kind_at_] == 'v' &&
          value_at_ < replay_->values.size()) {
        kind_at_++;
        return replay_->values[value_at_++];
      }
      diverged_ = true;
    }
    return live;
  }

  // Bytes read from outside (random_get): `out` holds the live bytes; they are recorded, or
  // replaced by the recorded ones.
  void Bytes(uint8_t* out, size_t n) {
    if (mode_ == Mode::kRecording) {
      if (Room(9 + n)) {
        rec_->kinds.push_back('b');
        rec_->values.push_back(n);
        rec_->bytes.append(reinterpret_cast<const char*>(out), n);
      }
    } else if (mode_ == Mode::kReplaying) {
      if (kind_at_ < replay_->kinds.size() && replay_->kinds[kind_at_] == 'b' &&
          value_at_ < replay_->values.size() && replay_->values[value_at_] == n &&
          replay_->bytes.size() - bytes_at_ >= n) {
        std::memcpy(out, replay_->bytes.data() + bytes_at_, n);
        kind_at_++;
        value_at_++;
        bytes_at_ += n;
        return;
      }
      diverged_ = true;
    }
  }

 private:
  bool Room(size_t more) {
    if (!overflowed_ && rec_->size() + more > max_bytes_) overflowed_ = true;
    return !overflowed_;
  }

  enum class Mode { kOff, kRecording, kReplaying };
  Mode mode_ = Mode::kOff;
  Recording* rec_ = nullptr;
  const Recording* replay_ = nullptr;
  size_t kind_at_ = 0, value_at_ = 0, bytes_at_ = 0;
  bool diverged_ = false;
  size_t max_bytes_ = 0;
  bool overflowed_ = false;
};

}  // namespace brig::wasi

#endif  // BRIG_WASI_TAPE_H_
