// CpuPlatform: the narrow seam through which the software CPU reaches the rest of the machine
// (guest RAM, MMIO, ports, the virtual clock, entropy and the interrupt controller). The CPU
// never touches the host directly; a RAM-only test platform is enough to run it alone.
#pragma once

#include <cstdint>

#include "hv-hooks/substrate/guest_memory.h"

namespace vmrr {

class CpuPlatform {
 public:
  virtual ~CpuPlatform() = default;

  // Guest RAM. The CPU marks pages it has decoded as code and installs itself as the
  // CodeWriteObserver, so device DMA written with GuestMemory::Write/NoteWrite into a code
  // page invalidates the decoded-block cache.
  virtual GuestMemory& memory() = 0;

  // Physical accesses outside RAM (size 1, 2, 4 or 8). Unclaimed reads should return all ones.
  virtual uint64_t MmioRead(uint64_t gpa, unsigned size) {
    (void)gpa;
    return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
  }
  virtual void MmioWrite(uint64_t gpa, unsigned size, uint64_t value) {
    (void)gpa, (void)size, (void)value;
  }

  // Port I/O (size 1, 2 or 4); the value is in the low size bytes.
  virtual uint32_t PortIn(uint16_t port, unsigned size) {
    (void)port;
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
  }
  virtual void PortOut(uint16_t port, unsigned size, uint32_t value) {
    (void)port, (void)size, (void)value;
  }

  // Guest TSC (the virtual clock); never the host's. The CPU adds IA32_TSC_ADJUST-style
  // offsets written by the guest (WRMSR to IA32_TSC) on top of this value.
  virtual uint64_t ReadTsc() { return 0; }

  // Entropy for RDRAND/RDSEED. Returning false makes the instruction report CF=0 (no value).
  virtual bool ReadRandom(uint64_t* value) {
    *value = 0;
    return false;
  }

  // Model-specific registers the machine owns (IA32_TSC_DEADLINE 0x6e0, IA32_APIC_BASE 0x1b
  // for the local APIC). Return false when the platform does not handle the MSR: the CPU then
  // handles it itself or raises #GP.
  virtual bool ReadMsr(uint32_t msr, uint64_t* value) {
    (void)msr, (void)value;
    return false;
  }
  virtual bool WriteMsr(uint32_t msr, uint64_t value) {
    (void)msr, (void)value;
    return false;
  }

  // Called when the CPU accepts an external interrupt (INTR line high, IF=1, no shadow);
  // returns the vector, like an INTA cycle.
  virtual uint8_t AckInterrupt() { return 0; }
};

}  // namespace vmrr
