#include "server/signed_link.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "util/hmac_sha256.h"

namespace brig::server {

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string SignFileLink(std::string_view key, std::string_view thread_id, std::string_view path, int64_t expires) {
  std::string message = "brig-file-link-v1\n";
  message.append(thread_id).append("\n").append(path).append("\n").append(std::to_string(expires));
  return util::ToHex(util::HmacSha256(key, message));
}

std::string MakeFileLink(std::string_view key, std::string_view thread_id, std::string_view path, int64_t expires) {
  return "/files/" + PercentEncode(thread_id, false) + PercentEncode(path, true) + "?expires=" +
         std::to_string(expires) + "&sig=" + SignFileLink(key, thread_id, path, expires);
}

bool VerifyFileLink(std::string_view key, std::string_view thread_id, std::string_view path, int64_t expires,
                    std::string_view sig, int64_t now) {
  bool valid = util::ConstantTimeEquals(SignFileLink(key, thread_id, path, expires), sig);
  return valid && now < expires;
}

StatusOr<std::string> LoadLinkKey(const std::string& file, const std::string& default_file) {
  auto check = [](std::string key, const std::string& where) -> StatusOr<std::string> {
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    if (key.size() < 32) return Status::InvalidArgument("the link key in " + where + " is shorter than 32 characters");
    return key;
  };
  auto read = [&](const std::string& path) -> StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::InvalidArgument("cannot read the link key file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return check(ss.str(), path);
  };
  if (!file.empty()) return read(file);
  if (const char* env = std::getenv("BRIG_LINK_KEY"); env && *env) return check(env, "BRIG_LINK_KEY");
  if (access(default_file.c_str(), F_OK) == 0) return read(default_file);
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw))
    return Status::Internal("getrandom failed making a link key");
  util::Sha256Digest d;
  std::copy(raw, raw + 32, d.begin());
  std::string key = util::ToHex(d);
  // Written whole to a temporary file, then linked into place: two processes making the
  // key at once agree on the first one's, and no reader sees a half-written key.
  std::string tmp = default_file + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::InvalidArgument("cannot create the link key file " + default_file);
  std::string line = key + "\n";
  bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = (fsync(fd) == 0) && ok;
  close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    return Status::Internal("cannot write the link key file " + default_file);
  }
  int linked = link(tmp.c_str(), default_file.c_str());
  int link_errno = errno;
  unlink(tmp.c_str());
  if (linked != 0) {
    if (link_errno == EEXIST) return read(default_file);
    return Status::InvalidArgument("cannot create the link key file " + default_file);
  }
  return key;
}

}  // namespace brig::server
