// Generator of tests/fuzz/corpus/cpu_state/long64_sse_code (not built by CMake; build by hand:
//   g++ -std=c++20 -I. tests/fuzz/make_cpu_state_fp_seed.cc build/release/hv-hooks/cpu/libvmrr_cpu.a \
//       build/release/hv-hooks/substrate/libvmrr_substrate.a -lZydis -lmpfr -lgmp -o /tmp/mk
//   /tmp/mk tests/fuzz/corpus/cpu_state/long64_sse_code )
// Writes a cpu_state seed: long mode, x87+SSE enabled, RIP at the XMM register bytes of the
// serialized state itself (the fuzz target writes the input at kCodeBase and runs it).
#include <cstdio>
#include <cstring>
#include <fstream>
#include "hv-hooks/cpu/cpu.h"
#include "tests/unit/cpu/flat_machine.h"
using namespace vmrr; using namespace vmrr::testing;
int main(int argc, char** argv) {
  TestPlatform platform(1 << 20);
  Cpu cpu(platform);
  CpuState s = MakeFlatState(FlatMode::kLong64, platform.memory());
  s.cr0 |= 0x22; s.cr4 |= 0x600;
  for (int i = 0; i < 16; ++i) { s.xmm[i][0] = 0x1111111111111111ull * (i + 1); s.xmm[i][1] = ~s.xmm[i][0]; }
  cpu.SetState(s);
  std::vector<uint8_t> b = cpu.SaveBytes();
  uint64_t mark = s.xmm[0][0];
  size_t off = 0;
  for (size_t i = 0; i + 8 <= b.size(); ++i) if (!std::memcmp(&b[i], &mark, 8)) { off = i; break; }
  // Code for XMM0..XMM15 (256 bytes): SSE and x87 on values in the registers, then HLT.
  const uint8_t code[] = {
      0x66, 0x0f, 0x59, 0xc1,        // mulpd xmm0, xmm1
      0x66, 0x0f, 0x58, 0xd0,        // addpd xmm2, xmm0
      0xf2, 0x0f, 0x5e, 0xd9,        // divsd xmm3, xmm1
      0x0f, 0x51, 0xe2,              // sqrtps xmm4, xmm2
      0xf3, 0x0f, 0x2d, 0xc3,        // cvtss2si eax, xmm3
      0x66, 0x0f, 0x2e, 0xc4,        // ucomisd xmm0, xmm4
      0xd9, 0xe8,                    // fld1
      0xd9, 0xeb,                    // fldpi
      0xde, 0xf9,                    // fdivp
      0xd9, 0xfa,                    // fsqrt
      0xd9, 0xfe,                    // fsin
      0x48, 0x83, 0xec, 0x10,        // sub rsp, 16
      0xdd, 0x1c, 0x24,              // fstp qword [rsp]
      0xf2, 0x0f, 0x10, 0x2c, 0x24,  // movsd xmm5, [rsp]
      0x0f, 0xae, 0x1c, 0x24,        // stmxcsr [rsp]
      0xf4};                         // hlt
  s.rip = kCodeBase + off;
  cpu.SetState(s);
  b = cpu.SaveBytes();
  std::memcpy(&b[off], code, sizeof code);
  // Keep the register values the code bytes now encode (the state is the input itself).
  cpu.LoadBytes(b);
  std::ofstream(argv[1], std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
  std::printf("xmm at %zu, %zu bytes\n", off, b.size());
  TestPlatform p2(1 << 20); Cpu c2(p2);
  c2.SetState(MakeFlatState(FlatMode::kLong64, p2.memory()));
  p2.memory().Write(kCodeBase, b.data(), b.size());
  c2.LoadBytes(b);
  RunResult r = c2.Run(c2.icount() + 1000);
  std::printf("ran %llu instructions: %s rip %llx\n", (unsigned long long)c2.icount(), StopReasonName(r.reason), (unsigned long long)c2.state().rip);
}
