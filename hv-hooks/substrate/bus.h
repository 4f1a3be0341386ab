// The port I/O and MMIO buses: a device interface (read/write at an offset) and an ordered map
// from non-overlapping address ranges to devices. Unassigned reads return all ones, unassigned
// writes are dropped, as on a PC where nothing drives the data lines.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

namespace vmrr {

// Anything reachable through a bus. offset is relative to the base the device was inserted
// at; size is 1, 2, 4 or 8; values are little-endian in the low `size` bytes.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual uint64_t Read(uint64_t offset, unsigned size) = 0;
  virtual void Write(uint64_t offset, unsigned size, uint64_t value) = 0;
};

// A machine configuration error (overlapping or empty ranges): a bug in the wiring.
class BusError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline uint64_t AllOnes(unsigned size) {
  return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
}

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Maps [base, base+length) to device. Throws BusError if the range is empty, wraps, or
  // overlaps a range already mapped.
  void Insert(BusDevice& device, uint64_t base, uint64_t length);

  // An access is routed only if it lies wholly inside one range; any other access (including
  // sizes other than 1/2/4/8) behaves as unassigned.
  uint64_t Read(uint64_t addr, unsigned size);
  void Write(uint64_t addr, unsigned size, uint64_t value);
  // The device and offset an access would reach, or nullptr.
  BusDevice* Find(uint64_t addr, unsigned size, uint64_t* offset) const;

  const std::string& name() const { return name_; }

 private:
  struct Range {
    uint64_t length;
    BusDevice* device;
  };
  std::string name_;
  std::map<uint64_t, Range> ranges_;  // keyed by base: ordered, so lookups are deterministic
};

class PortBus : public Bus {
 public:
  PortBus() : Bus("port I/O") {}
};

class MmioBus : public Bus {
 public:
  MmioBus() : Bus("MMIO") {}
};

}  // namespace vmrr
