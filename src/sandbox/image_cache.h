// Where the process image is kept on disk between processes (engine/image_file.h has the
// format): $BRIG_IMAGE_CACHE if set ("off" disables the cache), else $BRIG_HOME/images,
// else ~/.local/share/brig/images. One file per binary and guest build.
#ifndef BRIG_SANDBOX_IMAGE_CACHE_H_
#define BRIG_SANDBOX_IMAGE_CACHE_H_

#include <string>

#include "engine/python_instance.h"

namespace brig::image_cache {

// The cached image for this binary, or null (none yet, cache off, unusable file).
brig_python_image* Load();
// Saves `image` for later processes; best effort (a failure only costs them time).
void Save(const brig_python_image* image);
// The file Load and Save use; empty when the cache is off.
std::string Path();

}  // namespace brig::image_cache

#endif  // BRIG_SANDBOX_IMAGE_CACHE_H_
