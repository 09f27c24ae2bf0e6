// Base64 (RFC 4648 section 4: the standard alphabet, '=' padding, no line breaks): the one
// encoder and decoder of the tree (file contents in `brig files cat --json`, portable
// snapshots handed to and from the guest).
//
// Thread-safety: pure functions.
#ifndef BRIG_UTIL_BASE64_H_
#define BRIG_UTIL_BASE64_H_

#include "brig/text.h"  // declares Base64Encode and Base64Decode (the public contract)

#endif  // BRIG_UTIL_BASE64_H_
