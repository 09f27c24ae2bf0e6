// Where the process image is kept on disk between processes (engine/image_file.h has the
// format): $BRIG_IMAGE_CACHE if set ("off" disables the cache), else $BRIG_HOME/images,
// else ~/.local/share/brig/images. One file per binary and guest build (and its verification
// record, "<file>.verified": engine/image_file.h), and one more per seed that images were
// made with (PostgreSQL's shared seed: "<file>-seed-<hex>.img"); the most recent few are kept,
// and every one that a running process uses (loaded, or made and saved: a shared lock on it),
// since its sessions' page snapshots restore only on that image.
//
// Trust: the directory is used only if it, and every directory from it up to the one brig
// owns there ($BRIG_HOME, ~/.local/share/brig, or $BRIG_IMAGE_CACHE itself), is owned by this
// user and writable by nobody else, and every directory above that belongs to this user or
// root and is writable by others only with the sticky bit (as /tmp). A file or a directory
// that fails a check is reported in exactly one warning line on stderr and ignored: the
// image is then made afresh (and, if the directory is sound, saved over the bad file).
#ifndef BRIG_SANDBOX_IMAGE_CACHE_H_
#define BRIG_SANDBOX_IMAGE_CACHE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "engine/python_instance.h"

namespace brig::image_cache {

// Makes an image; sets *save when it is worth keeping for later processes. Null on failure.
using MakeFn = std::function<brig_python_image*(bool* save)>;

// The cached image for this binary, or else the one `make` returns, which is then saved.
// Processes that start together with no image in the cache make it once: the others wait
// (a lock on the directory, bounded) and load what the first saved. With `seed`, a cached
// image made with another seed is not used: `make` (which must then use `seed`) makes the
// one saved over it.
brig_python_image* LoadOrMake(std::optional<uint64_t> seed, const MakeFn& make);

// The file LoadOrMake uses without a seed; empty when the cache is off.
std::string Path();

// The cache file of the image LoadOrMake returned in this process (loaded from it, or made
// and saved there), which this process holds; empty if none (the cache is off or unusable,
// the image was not saved, or LoadOrMake has not returned yet).
std::string HeldFile();

// Holds `path`, an image file in this process's cache directory that another process uses
// (its HeldFile()), so that the cache keeps it while no process maps it: `brig serve`'s
// supervisor, whose workers may all be dead at once before their replacements load it.
// False, and nothing held, if `path` is not a regular ".img" file directly in the cache
// directory, or is being removed. Holds the 8 files named most recently (each held once)
// until this process exits: naming a ninth lets the least recently named one go. Thread-safe.
bool Hold(const std::string& path);

// Why brig must not keep images in `dir`, or empty if it may: the checks above, with
// `root` the directory brig owns (`dir` itself or an ancestor of it). For tests.
std::string UnsafeDirectory(const std::string& dir, const std::string& root);

}  // namespace brig::image_cache

#endif  // BRIG_SANDBOX_IMAGE_CACHE_H_
