// DiskBackend: where virtio-blk's sectors live on the host. The device model never touches a
// file: the backend (hv-hooks/host/file_disk_backend.h, beside the Environment) does the host
// I/O. A host failure is never shown to the guest as an I/O error that the recording would
// not reproduce: the device reports it as a host error and the machine stops there.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace vmrr {

// The image cannot be opened or used (missing, not a regular file, no permission).
class BlockImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DiskBackend {
 public:
  virtual ~DiskBackend() = default;
  virtual uint64_t size_bytes() const = 0;
  // Reads len bytes at offset; bytes past the end of the image read as zeros. false: the host
  // failed (error() says how).
  virtual bool Read(uint64_t offset, uint8_t* out, uint64_t len) = 0;
  // Writes to the image itself (write-through machines only; others keep an overlay).
  virtual bool Write(uint64_t offset, const uint8_t* in, uint64_t len) = 0;
  virtual bool Flush() = 0;
  // What the last failed call ran into, naming the image and the host error.
  virtual std::string error() const = 0;
};

}  // namespace vmrr
