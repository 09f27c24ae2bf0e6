// The seed this process's image is made with. By default each image draws its own
// (getrandom); the nodes on one PostgreSQL store share one (store::Store::SharedImageSeed),
// so that their images are equal and a page snapshot saved by one node restores on the
// others of the same build (docs/architecture.md, "Why the nodes on one PostgreSQL share
// the image seed").
#ifndef BRIG_SANDBOX_IMAGE_SEED_H_
#define BRIG_SANDBOX_IMAGE_SEED_H_

#include <cstdint>

namespace brig {

// Makes this process's image with `seed`: a cached image with another seed is made again
// (and saved over it). Returns whether the process image has, or will have, that seed:
// false when it was made (or is being made) before this call with another one, or when it
// could not be made at all. Thread-safe; call it before the first sandbox for it to matter.
bool UseImageSeed(uint64_t seed);

}  // namespace brig

#endif  // BRIG_SANDBOX_IMAGE_SEED_H_
