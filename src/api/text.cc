// brig/text.h. FormatTimestamp and FormatBytes are defined in src/session (its messages use
// them), Base64Encode and Base64Decode in src/util: one copy of each.
#include "brig/text.h"

#include "names/utf8.h"

namespace brig {

bool IsValidUtf8(std::string_view bytes) { return utf8::IsValid(bytes); }

}  // namespace brig
