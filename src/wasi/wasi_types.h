// WASI preview-1 constants and the guest-visible struct layouts (little-endian, wasm32),
// as brig's own C++ definitions. Layouts follow the witx spec (also visible in wasi-libc's
// wasi/api.h); the static_asserts pin every size and offset and forbid implicit padding,
// so a zero-initialised struct copied to the guest never leaks host bytes.
#ifndef BRIG_WASI_WASI_TYPES_H_
#define BRIG_WASI_WASI_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace brig::wasi {

// WASI errno values (returned as u32 by every call).
namespace err {
inline constexpr uint32_t kSuccess = 0;
inline constexpr uint32_t k2Big = 1;
inline constexpr uint32_t kAcces = 2;
inline constexpr uint32_t kAgain = 6;
inline constexpr uint32_t kBadF = 8;
inline constexpr uint32_t kBusy = 10;
inline constexpr uint32_t kExist = 20;
inline constexpr uint32_t kFault = 21;
inline constexpr uint32_t kFBig = 22;
inline constexpr uint32_t kIlSeq = 25;
inline constexpr uint32_t kInval = 28;
inline constexpr uint32_t kIo = 29;
inline constexpr uint32_t kIsDir = 31;
inline constexpr uint32_t kLoop = 32;
inline constexpr uint32_t kMFile = 33;
inline constexpr uint32_t kNameTooLong = 37;
inline constexpr uint32_t kNoEnt = 44;
inline constexpr uint32_t kNoMem = 48;
inline constexpr uint32_t kNoSpc = 51;
inline constexpr uint32_t kNoSys = 52;
inline constexpr uint32_t kNotDir = 54;
inline constexpr uint32_t kNotEmpty = 55;
inline constexpr uint32_t kNotSock = 57;
inline constexpr uint32_t kNotSup = 58;
inline constexpr uint32_t kNxio = 60;
inline constexpr uint32_t kOverflow = 61;
inline constexpr uint32_t kPerm = 63;
inline constexpr uint32_t kPipe = 64;
inline constexpr uint32_t kRange = 68;
inline constexpr uint32_t kRoFs = 69;
inline constexpr uint32_t kSPipe = 70;
inline constexpr uint32_t kXDev = 75;
inline constexpr uint32_t kNotCapable = 76;
// brig's own, past WASI's last: "no such extended attribute" (Linux's ENODATA), which WASI
// lacks; the guest's sys/xattr.h defines ENODATA as this number.
inline constexpr uint32_t kNoData = 77;
}  // namespace err

inline constexpr uint32_t kClockRealtime = 0;
inline constexpr uint32_t kClockMonotonic = 1;
inline constexpr uint32_t kClockProcessCputime = 2;
inline constexpr uint32_t kClockThreadCputime = 3;

inline constexpr uint8_t kFiletypeUnknown = 0;
inline constexpr uint8_t kFiletypeCharacterDevice = 2;
inline constexpr uint8_t kFiletypeDirectory = 3;
inline constexpr uint8_t kFiletypeRegularFile = 4;

inline constexpr uint32_t kWhenceSet = 0;
inline constexpr uint32_t kWhenceCur = 1;
inline constexpr uint32_t kWhenceEnd = 2;

inline constexpr uint16_t kFdflagAppend = 1 << 0;
inline constexpr uint16_t kFdflagDsync = 1 << 1;
inline constexpr uint16_t kFdflagNonblock = 1 << 2;
inline constexpr uint16_t kFdflagRsync = 1 << 3;
inline constexpr uint16_t kFdflagSync = 1 << 4;
inline constexpr uint16_t kFdflagsAll = 0x1f;

inline constexpr uint16_t kOflagCreat = 1 << 0;
inline constexpr uint16_t kOflagDirectory = 1 << 1;
inline constexpr uint16_t kOflagExcl = 1 << 2;
inline constexpr uint16_t kOflagTrunc = 1 << 3;
inline constexpr uint16_t kOflagsAll = 0xf;

inline constexpr uint16_t kFstflagAtim = 1 << 0;
inline constexpr uint16_t kFstflagAtimNow = 1 << 1;
inline constexpr uint16_t kFstflagMtim = 1 << 2;
inline constexpr uint16_t kFstflagMtimNow = 1 << 3;
inline constexpr uint16_t kFstflagsAll = 0xf;

inline constexpr uint8_t kAdviceMax = 5;  // NORMAL .. NOREUSE

inline constexpr uint8_t kEventtypeClock = 0;
inline constexpr uint8_t kEventtypeFdRead = 1;
inline constexpr uint8_t kEventtypeFdWrite = 2;
inline constexpr uint16_t kEventrwflagHangup = 1 << 0;
inline constexpr uint16_t kSubclockflagAbstime = 1 << 0;

inline constexpr uint8_t kPreopentypeDir = 0;

// Rights bits.
namespace rights {
inline constexpr uint64_t kFdDatasync = 1ull << 0;
inline constexpr uint64_t kFdRead = 1ull << 1;
inline constexpr uint64_t kFdSeek = 1ull << 2;
inline constexpr uint64_t kFdFdstatSetFlags = 1ull << 3;
inline constexpr uint64_t kFdSync = 1ull << 4;
inline constexpr uint64_t kFdTell = 1ull << 5;
inline constexpr uint64_t kFdWrite = 1ull << 6;
inline constexpr uint64_t kFdAdvise = 1ull << 7;
inline constexpr uint64_t kFdAllocate = 1ull << 8;
inline constexpr uint64_t kFdReaddir = 1ull << 14;
inline constexpr uint64_t kFdFilestatGet = 1ull << 21;
inline constexpr uint64_t kFdFilestatSetSize = 1ull << 22;
inline constexpr uint64_t kFdFilestatSetTimes = 1ull << 23;
inline constexpr uint64_t kPollFdReadwrite = 1ull << 27;
inline constexpr uint64_t kSockShutdown = 1ull << 28;
inline constexpr uint64_t kSockAccept = 1ull << 29;
// Every right brig can grant: all 30 defined bits except the socket ones.
inline constexpr uint64_t kAll = ((1ull << 30) - 1) & ~(kSockShutdown | kSockAccept);
// Rights that mean "this descriptor may change the file".
inline constexpr uint64_t kWriteIntent = kFdWrite | kFdAllocate | kFdFilestatSetSize;
inline constexpr uint64_t kStdio = kFdRead | kFdWrite | kFdFdstatSetFlags | kFdSync | kFdDatasync |
                                   kFdFilestatGet | kPollFdReadwrite;
}  // namespace rights

struct Iovec {
  uint32_t buf;
  uint32_t buf_len;
};

struct Fdstat {
  uint8_t filetype;
  uint8_t pad0;
  uint16_t flags;
  uint32_t pad1;
  uint64_t rights_base;
  uint64_t rights_inheriting;
};

// brig's extension: pad[1..2] (bytes 18-19, little-endian) hold kFilestatModeFlag | the
// node's permission bits (07777), which WASI's filestat has no field for; the guest's libc
// (guest/libc_perms.c) reads them into st_mode. Zero when brig has no mode to tell (stdio).
inline constexpr uint16_t kFilestatModeFlag = 0x8000;
// With kFilestatModeFlag: a pipe (brig_fd_pipe) or a named pipe (brig_path_mkfifo), which the
// guest reports as a FIFO (S_IFIFO), as Linux does; WASI has no filetype for it (the filetype
// stays unknown).
inline constexpr uint16_t kFilestatFifoFlag = 0x4000;

struct Filestat {
  uint64_t dev;
  uint64_t ino;
  uint8_t filetype;
  uint8_t pad[7];
  uint64_t nlink;
  uint64_t size;
  uint64_t atim;
  uint64_t mtim;
  uint64_t ctim;
};

struct Dirent {
  uint64_t d_next;
  uint64_t d_ino;
  uint32_t d_namlen;
  uint8_t d_type;
  uint8_t pad[3];
};

struct Prestat {
  uint8_t tag;
  uint8_t pad[3];
  uint32_t name_len;
};

struct SubscriptionClock {
  uint32_t id;
  uint32_t pad0;
  uint64_t timeout;
  uint64_t precision;
  uint16_t flags;
  uint8_t pad1[6];
};

struct Subscription {
  uint64_t userdata;
  uint8_t tag;
  uint8_t pad[7];
  union {
    SubscriptionClock clock;
    uint32_t fd;  // fd_read / fd_write
  } u;
};

struct Event {
  uint64_t userdata;
  uint16_t error;
  uint8_t type;
  uint8_t pad0[5];
  uint64_t nbytes;  // fd_read / fd_write: bytes available
  uint16_t flags;   // fd_read / fd_write: kEventrwflagHangup
  uint8_t pad1[6];
};

#define BRIG_WASI_LAYOUT(T, size_) \
  static_assert(sizeof(T) == (size_)); \
  static_assert(std::is_trivially_copyable_v<T>)
BRIG_WASI_LAYOUT(Iovec, 8);
BRIG_WASI_LAYOUT(Fdstat, 24);
BRIG_WASI_LAYOUT(Filestat, 64);
BRIG_WASI_LAYOUT(Dirent, 24);
BRIG_WASI_LAYOUT(Prestat, 8);
BRIG_WASI_LAYOUT(Subscription, 48);
BRIG_WASI_LAYOUT(Event, 32);
#undef BRIG_WASI_LAYOUT
static_assert(std::has_unique_object_representations_v<Fdstat>);
static_assert(std::has_unique_object_representations_v<Filestat>);
static_assert(std::has_unique_object_representations_v<Dirent>);
static_assert(std::has_unique_object_representations_v<Prestat>);
static_assert(std::has_unique_object_representations_v<Event>);
static_assert(offsetof(Fdstat, flags) == 2 && offsetof(Fdstat, rights_base) == 8 &&
              offsetof(Fdstat, rights_inheriting) == 16);
static_assert(offsetof(Filestat, ino) == 8 && offsetof(Filestat, filetype) == 16 &&
              offsetof(Filestat, nlink) == 24 && offsetof(Filestat, size) == 32 &&
              offsetof(Filestat, atim) == 40 && offsetof(Filestat, mtim) == 48 &&
              offsetof(Filestat, ctim) == 56);
static_assert(offsetof(Dirent, d_ino) == 8 && offsetof(Dirent, d_namlen) == 16 &&
              offsetof(Dirent, d_type) == 20);
static_assert(offsetof(Prestat, name_len) == 4);
static_assert(offsetof(Subscription, tag) == 8 && offsetof(Subscription, u) == 16);
static_assert(offsetof(SubscriptionClock, timeout) == 8 && offsetof(SubscriptionClock, precision) == 16 &&
              offsetof(SubscriptionClock, flags) == 24);
static_assert(offsetof(Event, error) == 8 && offsetof(Event, type) == 10 && offsetof(Event, nbytes) == 16 &&
              offsetof(Event, flags) == 24);

}  // namespace brig::wasi

#endif
