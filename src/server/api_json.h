// The JSON the API answers with, one function per kind of object. The same shapes as the
// CLI's --json output (brig exec --json, brig sessions show --json, brig files ... --json), so
// that a client can switch between the two.
#ifndef BRIG_SERVER_API_JSON_H_
#define BRIG_SERVER_API_JSON_H_

#include <nlohmann/json.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "brig/file_info.h"
#include "brig/grep.h"
#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/sessions.h"

namespace brig::server {

// Sessions: SessionInfoToJson (brig/result_json.h), shared with the CLI.
nlohmann::json FileInfoJson(const FileInfo& f);
nlohmann::json GrepResultJson(const GrepResult& r, GrepMode mode);
// What `brig exec --json` prints, with "session" holding the session's part.
nlohmann::json ExecutionJson(std::string_view thread_id, const SessionResult& s);
// One line of JSON; invalid UTF-8 in strings replaced (never an exception).
std::string Dump(const nlohmann::json& j);
// Appends `s` as a JSON string (quoted, escaped; invalid UTF-8 replaced by U+FFFD, as Dump
// does): for lines built without a json object (the request log, one per request).
void AppendJsonString(std::string* out, std::string_view s);
// The length of the well-formed UTF-8 sequence of 2-4 bytes at s[i], or 0 if there is none
// (overlong forms, surrogates and code points past U+10FFFF are not well-formed). The server
// cannot use src/names' codec (front ends include only include/brig/): this is its one copy.
size_t Utf8SequenceAt(std::string_view s, size_t i);

}  // namespace brig::server

#endif  // BRIG_SERVER_API_JSON_H_
