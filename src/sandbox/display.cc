#include "sandbox/display.h"

#include <algorithm>
#include <array>
#include <string>

#include "names/utf8.h"
#include "util/base64.h"
#include "util/json_depth.h"

namespace brig {

namespace {

constexpr std::array<std::string_view, 3> kBinaryTypes = {"image/png", "image/jpeg", "image/gif"};
constexpr std::array<std::string_view, 6> kTextTypes = {"text/plain",    "text/html",    "text/markdown",
                                                        "text/latex",    "image/svg+xml", "application/json"};

}  // namespace

bool IsBinaryDisplayType(std::string_view mime) {
  for (std::string_view t : kBinaryTypes)
    if (t == mime) return true;
  return false;
}

bool IsDisplayType(std::string_view mime) {
  if (IsBinaryDisplayType(mime)) return true;
  for (std::string_view t : kTextTypes)
    if (t == mime) return true;
  return false;
}

namespace sandbox {

bool LooksLikeImage(std::string_view mime, std::string_view b) {
  if (mime == "image/png") return b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8);
  if (mime == "image/jpeg") return b.substr(0, 3) == "\xff\xd8\xff";
  if (mime == "image/gif") return b.substr(0, 6) == "GIF87a" || b.substr(0, 6) == "GIF89a";
  return false;
}

void ReadGuestDisplay(const nlohmann::json& outcome, ExecutionResult* r) {
  uint64_t dropped = 0;
  std::string why;
  auto drop = [&](const std::string& reason) {
    ++dropped;
    if (why.empty()) why = reason;  // the first reason says enough
  };
  // What the guest says it dropped itself: a count only, capped so the note stays short.
  auto claimed = outcome.find("display_dropped");
  if (claimed != outcome.end() && claimed->is_number_unsigned() && claimed->get<uint64_t>() > 0) {
    dropped += std::min<uint64_t>(claimed->get<uint64_t>(), uint64_t{1} << 31);
    why = "over the limit of " + std::to_string(kMaxDisplayOutputs) + " outputs or " +
          std::to_string(kMaxDisplayBytes >> 20) + " MiB per execution";
  }
  auto list = outcome.find("display");
  if (list != outcome.end()) {
    if (!list->is_array()) {
      drop("the guest's display list is not a list");
    } else {
      size_t total = 0;
      for (const nlohmann::json& item : *list) {
        if (!item.is_object() || item.empty()) {
          drop("an output is not a non-empty {MIME type: data} object");
          continue;
        }
        if (r->display.size() >= kMaxDisplayOutputs) {
          drop("over the limit of " + std::to_string(kMaxDisplayOutputs) + " outputs per execution");
          continue;
        }
        DisplayOutput out;
        size_t size = 0;
        std::string fault;
        for (auto it = item.begin(); it != item.end() && fault.empty(); ++it) {
          const std::string& mime = it.key();
          if (!IsDisplayType(mime)) {
            fault = "unsupported MIME type \"" + mime.substr(0, 64) + "\"";
          } else if (!it->is_string()) {
            fault = mime + " data is not a string";
          } else if (IsBinaryDisplayType(mime)) {
            auto bytes = Base64Decode(it->get_ref<const std::string&>());
            if (!bytes) {
              fault = mime + " data is not valid base64";
            } else if (!LooksLikeImage(mime, *bytes)) {
              fault = mime + " data is not a " + mime.substr(6) + " image";
            } else {
              size += bytes->size();
              out.data.emplace(mime, std::move(*bytes));
            }
          } else {
            const std::string& text = it->get_ref<const std::string&>();
            // nlohmann's parser only lets valid UTF-8 through; checked again, it is cheap.
            if (!utf8::IsValid(text)) {
              fault = mime + " data is not UTF-8";
            } else if (mime == "application/json" &&
                       (JsonNestsTooDeep(text) || !nlohmann::json::accept(text))) {
              fault = "application/json data is not JSON";
            } else {
              size += text.size();
              out.data.emplace(mime, text);
            }
          }
        }
        if (!fault.empty()) {
          drop(fault);
        } else if (total + size > kMaxDisplayBytes) {
          drop("over the limit of " + std::to_string(kMaxDisplayBytes >> 20) + " MiB of display data per execution");
        } else {
          total += size;
          r->display.push_back(std::move(out));
        }
      }
    }
  }
  if (dropped > 0)
    r->display_note = "brig: " + std::to_string(dropped) + " display output" + (dropped == 1 ? "" : "s") +
                      " dropped: " + why;
}

}  // namespace sandbox
}  // namespace brig
