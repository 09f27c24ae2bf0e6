// Errors the VFS reports. They mirror the POSIX errno the guest will see; the WASI layer
// maps each to its WASI errno (ToWasiErrno in wasi/wasi_context.cc). Host-side callers get them too.
#ifndef BRIG_VFS_ERROR_H_
#define BRIG_VFS_ERROR_H_

#include <cstdint>

namespace brig::vfs {

enum class Error : uint8_t {
  kOk = 0,
  kNoEnt,        // a component does not exist
  kExist,        // the target already exists (create with EXCL, mkdir, ...)
  kNotDir,       // a non-final component, or a DIRECTORY open, is not a directory
  kIsDir,        // a file operation on a directory
  kNotEmpty,     // rmdir / rename onto a non-empty directory
  kRoFs,         // the node or its directory lies in a read-only part of the tree
  kXDev,         // rename across mounts
  kInval,        // bad argument (rename into own subtree, a control character or NUL in a
                 // new name, rmdir ".")
  kNoSpc,        // the byte, file or node quota of the writable mounts is used up
  kFBig,         // the file would pass the single-file size limit
  kNameTooLong,  // path or component longer than the limits allow, or a node too deep
  kPerm,         // never allowed in this VFS (hard links, symlinks)
  kBusy,         // a mount point cannot be removed or renamed
  kBadF,         // the node was removed (e.g. creating inside a removed directory)
  kNoMem,        // allocation failed
  kIlSeq,        // a new name is not valid UTF-8 (names/path_rules.h)
  kAcces,        // the node's mode bits deny the guest (its single user owns every node)
  kNoData,       // no such extended attribute (Linux's ENODATA)
  kRange,        // an extended attribute's name is empty or too long, or a buffer too small
  kTooBig,       // an extended attribute's value is too large (E2BIG)
  kNotSup,       // not kept here (an extended attribute namespace; EOPNOTSUPP)
  kNxio,         // a named pipe opened for writing only while no reader has it open (ENXIO)
};

// Short stable name ("ENOENT", ...) for messages and tests.
const char* ErrorName(Error e);

}  // namespace brig::vfs

#endif
