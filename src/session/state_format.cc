#include "session/state_format.h"

#include <nlohmann/json.hpp>

#include "util/base64.h"
#include "util/little_endian.h"

namespace brig::session {

nlohmann::json NodeToJson(const NodeExtras& n) {
  nlohmann::json entry = {{"path", n.path}, {"mode", n.mode}};
  if (n.named_pipe) entry["named_pipe"] = true;
  if (!n.xattrs.empty()) {
    nlohmann::json xattrs = nlohmann::json::array();
    for (const auto& [name, value] : n.xattrs) xattrs.push_back(nlohmann::json::array({Base64Encode(name), Base64Encode(value)}));
    entry["xattrs"] = std::move(xattrs);
  }
  return entry;
}

std::optional<NodeExtras> NodeFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("path") || !j["path"].is_string() || !j.contains("mode") ||
      !j["mode"].is_number_unsigned() || j["mode"].get<uint64_t>() > 07777)
    return std::nullopt;
  for (const auto& [key, value] : j.items()) {
    if (key != "path" && key != "mode" && key != "named_pipe" && key != "xattrs") return std::nullopt;
  }
  NodeExtras n;
  n.path = j["path"].get<std::string>();
  n.mode = static_cast<uint16_t>(j["mode"].get<uint64_t>());
  if (j.contains("named_pipe")) {
    if (!j["named_pipe"].is_boolean()) return std::nullopt;
    n.named_pipe = j["named_pipe"].get<bool>();
  }
  if (j.contains("xattrs")) {
    if (!j["xattrs"].is_array()) return std::nullopt;
    for (const nlohmann::json& pair : j["xattrs"]) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) return std::nullopt;
      std::optional<std::string> name = Base64Decode(pair[0].get<std::string>());
      std::optional<std::string> value = Base64Decode(pair[1].get<std::string>());
      if (!name || !value) return std::nullopt;
      n.xattrs[std::move(*name)] = std::move(*value);
    }
  }
  return n;
}

StoredState FreshState(std::vector<NodeExtras> nodes) {
  StoredState s;
  s.fresh = true;
  s.nodes = std::move(nodes);
  return s;
}

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
  if (s.fresh) tail["fresh"] = true;
  if (!s.nodes.empty()) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodeExtras& n : s.nodes) nodes.push_back(NodeToJson(n));
    tail["nodes"] = std::move(nodes);
  }
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
  if (j.is_object() && j.contains("fresh") && j["fresh"].is_boolean()) s.fresh = j["fresh"].get<bool>();
  if (j.is_object() && j.contains("nodes") && j["nodes"].is_array()) {
    for (const nlohmann::json& entry : j["nodes"]) {
      if (std::optional<NodeExtras> n = NodeFromJson(entry)) s.nodes.push_back(std::move(*n));
    }
  }
  return s;
}

}  // namespace brig::session
