#include "session/state_format.h"

#include <nlohmann/json.hpp>

#include "util/little_endian.h"

namespace brig::session {

std::string EncodeState(const StoredState& s) {
  std::string out;
  auto put = [&out](std::string_view bytes) {
    AppendLe64(&out, bytes.size());
    out.append(bytes);
  };
  put(s.pages);
  put(s.portable);
  nlohmann::json tail = {{"not_portable", s.not_portable}};
  if (s.reseed) tail["reseed"] = true;
  // Names come from the guest: not always UTF-8, and dump() must not throw on them.
  out += tail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

std::optional<StoredState> DecodeState(std::string_view in) {
  StoredState s;
  LeReader r(in);
  for (std::string* part : {&s.pages, &s.portable}) {
    uint64_t n = 0;
    std::string_view bytes;
    if (!r.U64(&n) || !r.Bytes(n, &bytes)) return std::nullopt;
    part->assign(bytes);
  }
  nlohmann::json j = nlohmann::json::parse(r.rest(), nullptr, false);
  if (j.is_object() && j.contains("not_portable") && j["not_portable"].is_object()) {
    for (const auto& [name, why] : j["not_portable"].items()) {
      if (why.is_string()) s.not_portable[name] = why.get<std::string>();
    }
  }
  if (j.is_object() && j.contains("reseed") && j["reseed"].is_boolean()) s.reseed = j["reseed"].get<bool>();
  return s;
}

}  // namespace brig::session
