// FileDiskBackend: a DiskBackend on a raw image file (pread/pwrite), opened read-only unless
// the machine writes through to its base image.
#pragma once

#include <memory>
#include <string>

#include "hv-hooks/devices/virtio/disk_backend.h"

namespace vmrr {

class FileDiskBackend final : public DiskBackend {
 public:
  // Throws BlockImageError naming the path and what is wrong with it.
  static std::unique_ptr<FileDiskBackend> Open(const std::string& path, bool writable);
  ~FileDiskBackend() override;
  FileDiskBackend(const FileDiskBackend&) = delete;
  FileDiskBackend& operator=(const FileDiskBackend&) = delete;

  uint64_t size_bytes() const override { return size_; }
  bool Read(uint64_t offset, uint8_t* out, uint64_t len) override;
  bool Write(uint64_t offset, const uint8_t* in, uint64_t len) override;
  bool Flush() override;
  std::string error() const override { return error_; }

 private:
  FileDiskBackend(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  bool Failed(const char* what, uint64_t offset, int err);

  std::string path_;
  int fd_;
  uint64_t size_;
  std::string error_;
};

}  // namespace vmrr
