// Test helpers for the machine tests: builders for ELF64 / ELF32 / Multiboot images around
// hand-assembled machine code, and a deterministic in-memory Environment.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hv-hooks/environment.h"
#include "logformat/byte_order.h"

namespace vmrr::test {

// Little-endian field stores that grow the image as needed.
inline void PutLe(std::vector<uint8_t>& b, size_t off, uint64_t v, unsigned bytes) {
  if (b.size() < off + bytes) b.resize(off + bytes);
  StoreLe(b.data() + off, v, bytes);
}
inline void Put16(std::vector<uint8_t>& b, size_t off, uint16_t v) { PutLe(b, off, v, 2); }
inline void Put32(std::vector<uint8_t>& b, size_t off, uint32_t v) { PutLe(b, off, v, 4); }
inline void Put64(std::vector<uint8_t>& b, size_t off, uint64_t v) { PutLe(b, off, v, 8); }

struct Segment64 {
  uint64_t paddr;
  std::vector<uint8_t> data;
  uint64_t memsz = 0;  // 0 = data.size()
  uint64_t vaddr = ~uint64_t{0};  // default = paddr
};

// ELF64 x86-64 ET_EXEC: header, program headers right after it, segment data after those.
inline std::vector<uint8_t> MakeElf64(uint64_t entry, const std::vector<Segment64>& segs) {
  std::vector<uint8_t> b(64, 0);
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 2, b[5] = 1, b[6] = 1;
  Put16(b, 16, 2);
  Put16(b, 18, 62);
  Put32(b, 20, 1);
  Put64(b, 24, entry);
  Put64(b, 32, 64);
  Put16(b, 52, 64);
  Put16(b, 54, 56);
  Put16(b, 56, static_cast<uint16_t>(segs.size()));
  uint64_t data_off = 64 + 56 * segs.size();
  data_off = (data_off + 15) & ~uint64_t{15};
  for (size_t i = 0; i < segs.size(); ++i) {
    const size_t ph = 64 + 56 * i;
    const Segment64& s = segs[i];
    Put32(b, ph, 1);
    Put32(b, ph + 4, 7);
    Put64(b, ph + 8, data_off);
    Put64(b, ph + 16, s.vaddr == ~uint64_t{0} ? s.paddr : s.vaddr);
    Put64(b, ph + 24, s.paddr);
    Put64(b, ph + 32, s.data.size());
    Put64(b, ph + 40, s.memsz ? s.memsz : s.data.size());
    Put64(b, ph + 48, 0x1000);
    b.resize(data_off);
    b.insert(b.end(), s.data.begin(), s.data.end());
    data_off = (b.size() + 15) & ~uint64_t{15};
  }
  return b;
}

// Multiboot header (12 bytes, or 32 with the a.out-kludge fields).
inline std::vector<uint8_t> MultibootHeader(uint32_t flags, uint32_t header_addr = 0,
                                            uint32_t load_addr = 0, uint32_t load_end = 0,
                                            uint32_t bss_end = 0, uint32_t entry = 0) {
  std::vector<uint8_t> h;
  Put32(h, 0, 0x1BADB002);
  Put32(h, 4, flags);
  Put32(h, 8, static_cast<uint32_t>(0u - 0x1BADB002u - flags));
  if (flags & (1u << 16)) {
    Put32(h, 12, header_addr);
    Put32(h, 16, load_addr);
    Put32(h, 20, load_end);
    Put32(h, 24, bss_end);
    Put32(h, 28, entry);
  }
  return h;
}

// ELF32 i386 ET_EXEC with one PT_LOAD (data at file offset 0x100) at paddr.
inline std::vector<uint8_t> MakeElf32(uint32_t entry, uint32_t paddr, const std::vector<uint8_t>& data,
                                      uint32_t memsz = 0) {
  std::vector<uint8_t> b(0x100, 0);
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 1, b[5] = 1, b[6] = 1;
  Put16(b, 16, 2);
  Put16(b, 18, 3);
  Put32(b, 20, 1);
  Put32(b, 24, entry);
  Put32(b, 28, 52);
  Put16(b, 40, 52);
  Put16(b, 42, 32);
  Put16(b, 44, 1);
  Put32(b, 52, 1);
  Put32(b, 56, 0x100);
  Put32(b, 60, paddr);
  Put32(b, 64, paddr);
  Put32(b, 68, static_cast<uint32_t>(data.size()));
  Put32(b, 72, memsz ? memsz : static_cast<uint32_t>(data.size()));
  Put32(b, 76, 7);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// Hand-assembled 64-bit guests (gas --64 -M intel listings in the comments).
// hello: mov dx,0x3f8; mov al,'H'; out dx,al; mov al,'i'; out dx,al; mov dx,0xf4;
//        mov eax,3; out dx,eax; hlt          -> console "Hi", exit status (3<<1)|1 = 7
inline const std::vector<uint8_t> kHelloCode = {
    0x66, 0xba, 0xf8, 0x03, 0xb0, 0x48, 0xee, 0xb0, 0x69, 0xee, 0x66,
    0xba, 0xf4, 0x00, 0xb8, 0x03, 0x00, 0x00, 0x00, 0xef, 0xf4};

// timer (busy variant): lidt [0x201000]; PIC ICW1..4 (vector base 0x20), mask all but IRQ0;
// PIT ch0 mode 2, count 1193 (~1 ms); xor ebx,ebx; sti;
// loop: cmp ebx,5; jae done; inc rcx; jmp loop; done: mov dx,0xf4; xor eax,eax; out dx,eax; hlt
// isr @+0x80: inc ebx; mov al,0x20; out 0x20,al (EOI); mov dx,0x3f8; mov al,'T'; out dx,al; iretq
// `divisor` is the PIT channel 0 reload value: a smaller one gives the same five interrupts
// in fewer instructions.
inline std::vector<uint8_t> TimerCode(bool use_hlt, uint16_t divisor = 0x04a9) {
  std::vector<uint8_t> c = {
      0x0f, 0x01, 0x1c, 0x25, 0x00, 0x10, 0x20, 0x00, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20,
      0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21,
      0xb0, 0x34, 0xe6, 0x43, 0xb0, static_cast<uint8_t>(divisor), 0xe6, 0x40,
      0xb0, static_cast<uint8_t>(divisor >> 8), 0xe6, 0x40, 0x31, 0xdb,
      0xfb, 0x83, 0xfb, 0x05};
  if (use_hlt) {
    // jae done(+3); hlt; jmp loop
    c.insert(c.end(), {0x73, 0x03, 0xf4, 0xeb, 0xf8});
  } else {
    // jae done(+5); inc rcx; jmp loop
    c.insert(c.end(), {0x73, 0x05, 0x48, 0xff, 0xc1, 0xeb, 0xf6});
  }
  c.insert(c.end(), {0x66, 0xba, 0xf4, 0x00, 0x31, 0xc0, 0xef, 0xf4});
  c.resize(0x80, 0x90);
  c.insert(c.end(), {0xff, 0xc3, 0xb0, 0x20, 0xe6, 0x20, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x54,
                     0xee, 0x48, 0xcf});
  return c;
}

// IDT at 0x200000 with vector 0x20 -> isr_addr (64-bit interrupt gate, CS 0x08), IDTR
// pseudo-descriptor at 0x201000.
inline std::vector<uint8_t> IdtWithTimerVector(uint64_t isr_addr) {
  std::vector<uint8_t> d(0x1000 + 10, 0);
  const size_t e = 0x20 * 16;
  Put16(d, e, static_cast<uint16_t>(isr_addr));
  Put16(d, e + 2, 0x08);
  d[e + 4] = 0;
  d[e + 5] = 0x8e;
  Put16(d, e + 6, static_cast<uint16_t>(isr_addr >> 16));
  Put32(d, e + 8, static_cast<uint32_t>(isr_addr >> 32));
  Put16(d, 0x1000, 0xfff);
  Put64(d, 0x1002, 0x200000);
  return d;
}

inline std::vector<uint8_t> TimerGuest(bool use_hlt) {
  return MakeElf64(0x100000, {{0x100000, TimerCode(use_hlt)}, {0x200000, IdtWithTimerVector(0x100080)}});
}

inline std::vector<uint8_t> CodeGuest(const std::vector<uint8_t>& code) {
  return MakeElf64(0x100000, {{0x100000, code}});
}

// Deterministic environment: fixed time steps, no input, counter-based entropy; records
// console output with the icount it was produced at.
class FakeEnvironment : public Environment {
 public:
  int64_t SampleTime(uint64_t) override { return now_ns += 1000; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t max_bytes) override {
    ++console_polls;
    std::vector<uint8_t> out;
    while (!console_in.empty() && out.size() < max_bytes) {
      out.push_back(console_in.front());
      console_in.erase(console_in.begin());
    }
    return out;
  }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>*) override { return false; }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = static_cast<uint8_t>(entropy_counter++);
  }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    console.append(bytes.begin(), bytes.end());
    for (size_t i = 0; i < bytes.size(); ++i) console_icounts.push_back(icount);
  }
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t, int64_t deadline) override {
    ++waits;
    if (deadline > now_ns && deadline != INT64_MAX) now_ns = deadline;
    return false;
  }

  int64_t now_ns = 1'700'000'000'000'000'000;
  std::string console;
  std::vector<uint64_t> console_icounts;
  std::vector<uint8_t> console_in;
  uint64_t entropy_counter = 0;
  int waits = 0;
  int console_polls = 0;
};

}  // namespace vmrr::test
