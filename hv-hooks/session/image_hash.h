// Hashing of the files a recording depends on (disk images, the kernel), as the log header's
// ImageHash entries carry them: size and XXH3-128.
#pragma once

#include <string>

#include "logformat/format.h"

namespace vmrr {

// Hashes the file at `path` into an ImageHash named `name` (e.g. "disk:rootfs.img").
// Throws std::runtime_error naming the path if it cannot be read.
log::ImageHash HashImageFile(const std::string& name, const std::string& path);

// "rootfs.img" for "/some/dir/rootfs.img".
std::string BaseName(const std::string& path);

}  // namespace vmrr
