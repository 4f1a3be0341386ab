// FileDiskBackend: host file I/O for virtio-blk.
#include "hv-hooks/host/file_disk_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmrr {

std::unique_ptr<FileDiskBackend> FileDiskBackend::Open(const std::string& path, bool writable) {
  const int fd = open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    throw BlockImageError("disk image '" + path + "': " + std::strerror(errno) +
                          " (check the path and its permissions)");
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw BlockImageError("disk image '" + path + "' is not a regular file");
  }
  return std::unique_ptr<FileDiskBackend>(new FileDiskBackend(path, fd, static_cast<uint64_t>(st.st_size)));
}

FileDiskBackend::~FileDiskBackend() { close(fd_); }

bool FileDiskBackend::Failed(const char* what, uint64_t offset, int err) {
  error_ = "disk image '" + path_ + "': " + what + " at byte " + std::to_string(offset) + ": " +
           (err ? std::strerror(err) : "no progress");
  return false;
}

bool FileDiskBackend::Read(uint64_t offset, uint8_t* out, uint64_t len) {
  uint64_t done = 0;
  while (done < len) {
    const ssize_t r = pread(fd_, out + done, len - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Failed("read failed", offset + done, errno);
    if (r == 0) {  // past the end of a file whose size is not a sector multiple
      std::memset(out + done, 0, len - done);
      break;
    }
    done += static_cast<uint64_t>(r);
  }
  return true;
}

bool FileDiskBackend::Write(uint64_t offset, const uint8_t* in, uint64_t len) {
  uint64_t done = 0;
  while (done < len) {
    const ssize_t r = pwrite(fd_, in + done, len - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Failed("write failed", offset + done, r < 0 ? errno : 0);
    done += static_cast<uint64_t>(r);
  }
  return true;
}

bool FileDiskBackend::Flush() {
  if (fdatasync(fd_) == 0) return true;
  return Failed("flush failed", 0, errno);
}

}  // namespace vmrr
