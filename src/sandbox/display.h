// Reading what the guest showed with brig.show() (guest/stdlib/brig.py) out of its result
// document, checking everything: the guest is untrusted, and its code may have replaced brig's
// module, the runner's channel, or anything else it can reach.
//
// Thread-safety: a pure function of its arguments.
#ifndef BRIG_SANDBOX_DISPLAY_H_
#define BRIG_SANDBOX_DISPLAY_H_

#include <nlohmann/json.hpp>

#include "brig/sandbox.h"

namespace brig::sandbox {

// Fills r->display from `outcome`'s "display" (a list of {MIME type: string} objects; bytes
// types base64) and "display_dropped" (how many the guest itself dropped). Never fails:
// anything malformed (a MIME type outside the allowlist, bad base64, bytes that are not the
// image they claim, invalid JSON, a non-string, outputs or bytes past kMaxDisplayOutputs /
// kMaxDisplayBytes) is dropped and counted in r->display_note.
void ReadGuestDisplay(const nlohmann::json& outcome, ExecutionResult* r);

// Whether `bytes` start the way a file of the (binary) display type `mime` does.
bool LooksLikeImage(std::string_view mime, std::string_view bytes);

}  // namespace brig::sandbox

#endif  // BRIG_SANDBOX_DISPLAY_H_
