// Speed of vmrr's software CPU next to Unicorn (QEMU's TCG) on the same guest code, measured
// in one run. Each case prints one line:
//   case=NAME vmrr_mips=X unicorn_mips=Y ratio=X/Y
// (MIPS = guest instructions per second / 1e6, counted as vmrr counts them: every REP
// iteration is one; for INT loops Unicorn's interrupt hook stands in for the handler's IRETQ,
// so both are credited vmrr's instruction count per loop iteration).
// Cases: register-only integer loop, memory loop over 64 MiB through 4 KiB pages (4-level
// paging on both), REP MOVSB and REP STOSQ, call/return loop, INT n loop, an external
// interrupt every 100 instructions (vmrr only), and the cost of exact instruction counting:
// the integer loop run to one huge target vs. a target every 10,000 instructions; then
// FP/SIMD: a packed-double dot product (MOVAPD/MULPD/ADDPD), a 1 MiB MOVDQU/MOVDQA copy and
// an x87 FLD/FMUL/FADD/FSTP loop (until branch x87 is merged, vmrr reports #UD for it).
// Usage: bench_cpu [--scale=F] [--case=SUBSTRING] [--vmrr-only]
//   --scale multiplies the work per case (default 1); --case runs only matching cases;
//   --vmrr-only skips Unicorn (for profiling vmrr).
#include <unicorn/unicorn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "logformat/byte_order.h"
#include "tests/unit/cpu/flat_machine.h"

namespace {

using namespace vmrr;
using namespace vmrr::testing;
using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

double g_scale = 1.0;
std::string g_case_filter;
bool g_vmrr_only = false;

bool Selected(const std::string& name) {
  return g_case_filter.empty() || name.find(g_case_filter) != std::string::npos;
}

void Put32le(Bytes& b, uint32_t v) { AppendLe(b, v, 4); }

// A platform whose interrupt controller drops the line when the CPU acknowledges it.
class BenchPlatform : public TestPlatform {
 public:
  explicit BenchPlatform(uint64_t ram) : TestPlatform(ram) {}
  uint8_t AckInterrupt() override {
    if (cpu) cpu->SetIntrLine(false);
    return TestPlatform::AckInterrupt();
  }
  Cpu* cpu = nullptr;
};

struct Case {
  std::string name;
  uint64_t ram = 8 << 20;
  Bytes code;                  // at kCodeBase
  uint64_t instructions = 0;   // guest instructions to HLT (vmrr's count)
  bool paged_4k = false;       // the memory case's own page tables
  bool int_gate = false;       // vector 0x20 -> IRETQ handler
  bool fpu = false;            // CR0.MP|NE, CR4.OSFXSR|OSXMMEXCPT: x87 and SSE usable
  std::function<void(GuestMemory&)> init;
};

// ---- guest memory image shared by both engines ---------------------------------------------------

constexpr uint64_t kHandler = kCodeBase + 0x800;    // IRETQ
constexpr uint64_t kPt4kRoot = 0x100000;             // PML4 of the 4 KiB-page tables
constexpr uint64_t kMemVa = 0x1000000, kMemBytes = 64 << 20;

// 4-level tables: the low 16 MiB with 2 MiB pages, then 64 MiB of data with 4 KiB pages
// (identity-mapped: Unicorn 2.0.1 does not translate through guest page tables, so it only
// runs this case with virtual = physical; vmrr walks and caches the 4 KiB entries).
void Build4kPageTables(GuestMemory& m) {
  const uint64_t pml4 = kPt4kRoot, pdpt = pml4 + 0x1000, pd = pml4 + 0x2000,
                 pts = pml4 + 0x10000;
  Put64(m, pml4, pdpt | 7);
  Put64(m, pdpt, pd | 7);
  for (uint64_t i = 0; i < kMemVa >> 21; ++i) Put64(m, pd + 8 * i, (i << 21) | 0x87);
  for (uint64_t t = 0; t < kMemBytes >> 21; ++t) {
    const uint64_t pt = pts + t * 0x1000;
    Put64(m, pd + 8 * ((kMemVa >> 21) + t), pt | 7);
    for (uint64_t i = 0; i < 512; ++i) {
      Put64(m, pt + 8 * i, (kMemVa + (t << 21) + (i << 12)) | 7);
    }
  }
}

CpuState BaseState(const Case& c, GuestMemory& m) {
  CpuState s = MakeFlatState(FlatMode::kLong64, m);
  if (c.paged_4k) {
    Build4kPageTables(m);
    s.cr3 = kPt4kRoot;
  }
  if (c.int_gate) {
    const uint64_t lo = (kHandler & 0xffff) | (uint64_t{kSelCode} << 16) |
                        (uint64_t{0x8e} << 40) | ((kHandler >> 16) & 0xffff) << 48;
    Put64(m, kIdtBase + 0x20 * 16, lo);
    Put64(m, kIdtBase + 0x20 * 16 + 8, 0);
    const uint8_t iretq[] = {0x48, 0xcf};
    m.Write(kHandler, iretq, 2);
  }
  if (c.fpu) {
    s.cr0 |= 0x22;   // MP, NE (EM, TS clear)
    s.cr4 |= 0x600;  // OSFXSR, OSXMMEXCPT
  }
  m.Write(kCodeBase, c.code.data(), c.code.size());
  if (c.init) c.init(m);
  return s;
}

// ---- the two engines ------------------------------------------------------------------------------

struct Measurement {
  double seconds = 0;
  uint64_t instructions = 0;
  bool ok = false;
  std::string error;
  double mips() const { return ok && seconds > 0 ? instructions / seconds / 1e6 : 0; }
};

Measurement RunVmrr(const Case& c, uint64_t slice = 0) {
  BenchPlatform platform(c.ram);
  // Touch all of RAM first, as Unicorn's image copy does, so that neither engine pays the
  // host's first-touch page faults inside the measurement.
  std::memset(platform.memory().data(), 0, c.ram);
  Cpu cpu(platform);
  platform.cpu = &cpu;
  cpu.SetState(BaseState(c, platform.memory()));
  Measurement m;
  const uint64_t start = cpu.icount();
  const auto t0 = Clock::now();
  RunResult r;
  if (slice == 0) {
    r = cpu.Run(~uint64_t{0});
  } else {
    do r = cpu.Run(cpu.icount() + slice); while (r.reason == StopReason::kTargetReached);
  }
  m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  m.instructions = cpu.icount() - start;
  m.ok = r.reason == StopReason::kHalted && cpu.state().rip == kCodeBase + c.code.size();
  if (!m.ok) m.error = std::string("vmrr stopped: ") + StopReasonName(r.reason);
  if (m.ok && m.instructions != c.instructions) {
    m.ok = false;
    m.error = "vmrr retired " + std::to_string(m.instructions) + " instructions, expected " +
              std::to_string(c.instructions);
  }
  return m;
}

// External interrupts: the line is raised every `period` instructions; the handler IRETQs.
Measurement RunVmrrExternalInterrupts(const Case& c, uint64_t period, uint64_t total) {
  BenchPlatform platform(c.ram);
  Cpu cpu(platform);
  platform.cpu = &cpu;
  platform.next_vector = 0x20;
  CpuState s = BaseState(c, platform.memory());
  s.rflags |= kFlagIf;
  cpu.SetState(s);
  Measurement m;
  const uint64_t start = cpu.icount();
  const auto t0 = Clock::now();
  while (cpu.icount() - start < total) {
    cpu.SetIntrLine(true);
    cpu.Run(cpu.icount() + period);
  }
  m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  m.instructions = cpu.icount() - start;
  m.ok = platform.acks * period >= m.instructions - period;
  if (!m.ok) m.error = "fewer interrupts than expected: " + std::to_string(platform.acks);
  return m;
}

void OnUnicornInterrupt(uc_engine*, uint32_t, void*) {}

Measurement RunUnicorn(const Case& c) {
  Measurement m;
  uc_engine* uc = nullptr;
  if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK) {
    m.error = "uc_open failed";
    return m;
  }
  // The same memory image: build it in a vmrr GuestMemory and copy it.
  GuestMemory image(c.ram);
  const CpuState s = BaseState(c, image);
  uc_mem_map(uc, 0, c.ram, UC_PROT_ALL);
  uc_mem_write(uc, 0, image.data(), c.ram);
  uint64_t rsp = s.gpr[kRsp];
  uc_reg_write(uc, UC_X86_REG_RSP, &rsp);
  if (c.paged_4k) {
    // Same 4-level tables (see Build4kPageTables for what Unicorn makes of them).
    uint64_t cr3 = kPt4kRoot, cr4 = 0, cr0 = 0;
    uc_reg_read(uc, UC_X86_REG_CR4, &cr4);
    uc_reg_read(uc, UC_X86_REG_CR0, &cr0);
    cr4 |= 0x20;
    cr0 |= 0x80000001;
    uc_reg_write(uc, UC_X86_REG_CR3, &cr3);
    uc_reg_write(uc, UC_X86_REG_CR4, &cr4);
    uc_reg_write(uc, UC_X86_REG_CR0, &cr0);
  }
  if (c.fpu) {
    // The same CR0/CR4 as vmrr's (Unicorn's own reset values may differ).
    uint64_t cr0 = 0, cr4 = 0;
    uc_reg_read(uc, UC_X86_REG_CR0, &cr0);
    uc_reg_read(uc, UC_X86_REG_CR4, &cr4);
    cr0 = (cr0 | 0x22) & ~uint64_t{0xc};
    cr4 |= 0x600;
    uc_reg_write(uc, UC_X86_REG_CR0, &cr0);
    uc_reg_write(uc, UC_X86_REG_CR4, &cr4);
  }
  uc_hook hook = 0;
  if (c.int_gate) {
    uc_hook_add(uc, &hook, UC_HOOK_INTR, reinterpret_cast<void*>(&OnUnicornInterrupt), nullptr,
                1, 0);
  }
  const uint64_t end = kCodeBase + c.code.size() - 1;  // the HLT
  const auto t0 = Clock::now();
  const uc_err e = uc_emu_start(uc, kCodeBase, end, 0, 0);
  m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t rip = 0;
  uc_reg_read(uc, UC_X86_REG_RIP, &rip);
  m.ok = e == UC_ERR_OK && rip == end;
  if (!m.ok) m.error = std::string("unicorn: ") + uc_strerror(e) + " at " + std::to_string(rip);
  m.instructions = c.instructions;
  uc_close(uc);
  return m;
}

template <typename F>
Measurement Best(int reps, F f) {
  Measurement best;
  for (int i = 0; i < reps; ++i) {
    Measurement m = f();
    if (!m.ok) return m;
    if (!best.ok || m.seconds < best.seconds) best = m;
  }
  return best;
}

// ---- cases ------------------------------------------------------------------------------------------

uint32_t Scaled(double n) { return static_cast<uint32_t>(std::max(1.0, n * g_scale)); }

Case IntegerLoop() {
  const uint32_t n = Scaled(12e6);
  Case c{"int_loop"};
  c.code = {0xb9};
  Put32le(c.code, n);                     // mov ecx, n
  const Bytes body = {0x01, 0xd8,         // L: add eax, ebx
                      0x31, 0xc2,         //    xor edx, eax
                      0xff, 0xc3,         //    inc ebx
                      0x29, 0xd6,         //    sub esi, edx
                      0x8d, 0x3c, 0x58,   //    lea edi, [rax+rbx*2]
                      0xff, 0xc9,         //    dec ecx
                      0x75, 0xf1};        //    jnz L
  c.code.insert(c.code.end(), body.begin(), body.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + 7ull * n + 1;
  return c;
}

Case MemoryLoop() {
  const uint32_t passes = Scaled(4);
  Case c{"mem_loop_64MiB_4k_pages"};
  c.ram = kMemVa + kMemBytes;
  c.paged_4k = true;
  c.code = {0x41, 0xb8};
  Put32le(c.code, passes);                               // mov r8d, passes
  const Bytes pass = {
      0xbe, 0x00, 0x00, 0x00, 0x01,                      // P: mov esi, kMemVa
      0xbf, 0x00, 0x00, 0x00, 0x05,                      //    mov edi, kMemVa + 64 MiB
      0x48, 0x8b, 0x06,                                  // L: mov rax, [rsi]
      0x48, 0x01, 0xd0,                                  //    add rax, rdx
      0x48, 0x89, 0x06,                                  //    mov [rsi], rax
      0x48, 0x83, 0xc6, 0x40,                            //    add rsi, 64
      0x48, 0x39, 0xfe,                                  //    cmp rsi, rdi
      0x72, 0xee,                                        //    jb L
      0x41, 0xff, 0xc8,                                  //    dec r8d
      0x75, 0xdf};                                       //    jnz P
  c.code.insert(c.code.end(), pass.begin(), pass.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + passes * (2 + 6ull * (kMemBytes / 64) + 2) + 1;
  return c;
}

Case RepMovsb() {
  const uint32_t passes = Scaled(40);
  Case c{"rep_movsb_1MiB"};
  c.code = {0x41, 0xb8};
  Put32le(c.code, passes);                 // mov r8d, passes
  const Bytes pass = {
      0xbe, 0x00, 0x00, 0x20, 0x00,        // P: mov esi, 0x200000
      0xbf, 0x00, 0x00, 0x40, 0x00,        //    mov edi, 0x400000
      0xb9, 0x00, 0x00, 0x10, 0x00,        //    mov ecx, 1 MiB
      0xf3, 0xa4,                          //    rep movsb
      0x41, 0xff, 0xc8,                    //    dec r8d
      0x75, 0xea};                         //    jnz P
  c.code.insert(c.code.end(), pass.begin(), pass.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + passes * (3ull + (1 << 20) + 2) + 1;
  return c;
}

Case RepStosq() {
  const uint32_t passes = Scaled(200);
  Case c{"rep_stosq_1MiB"};
  c.code = {0x41, 0xb8};
  Put32le(c.code, passes);                 // mov r8d, passes
  const Bytes pass = {
      0xbf, 0x00, 0x00, 0x40, 0x00,        // P: mov edi, 0x400000
      0xb9, 0x00, 0x00, 0x02, 0x00,        //    mov ecx, 128 Ki
      0xf3, 0x48, 0xab,                    //    rep stosq
      0x41, 0xff, 0xc8,                    //    dec r8d
      0x75, 0xee};                         //    jnz P
  c.code.insert(c.code.end(), pass.begin(), pass.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + passes * (2ull + (1 << 17) + 2) + 1;
  return c;
}

Case CallReturn() {
  const uint32_t n = Scaled(8e6);
  Case c{"call_ret"};
  c.code = {0xb9};
  Put32le(c.code, n);                      // mov ecx, n
  const Bytes body = {
      0xeb, 0x04,                          //    jmp L
      0x83, 0xc0, 0x01,                    // F: add eax, 1
      0xc3,                                //    ret
      0xe8, 0xf7, 0xff, 0xff, 0xff,        // L: call F
      0xff, 0xc9,                          //    dec ecx
      0x75, 0xf7,                          //    jnz L
      0xf4};                               //    hlt
  c.code.insert(c.code.end(), body.begin(), body.end());
  c.instructions = 1 + 1 + 5ull * n + 1;
  return c;
}

Case IntLoop() {
  const uint32_t n = Scaled(2e6);
  Case c{"int_n_loop"};
  c.int_gate = true;
  c.code = {0xb9};
  Put32le(c.code, n);                      // mov ecx, n
  const Bytes body = {0xcd, 0x20,          // L: int 0x20   (handler: iretq)
                      0xff, 0xc9,          //    dec ecx
                      0x75, 0xfa};         //    jnz L
  c.code.insert(c.code.end(), body.begin(), body.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + 4ull * n + 1;
  return c;
}

// Doubles for the FP cases: 1 + i/2^20 (exact, no denormals, no overflow in any sum).
void FillDoubles(GuestMemory& m, uint64_t gpa, uint64_t count, double scale) {
  for (uint64_t i = 0; i < count; ++i) {
    const double v = (1.0 + static_cast<double>(i) / 1048576.0) * scale;
    m.Write(gpa + 8 * i, &v, 8);
  }
}

// Packed-double dot product over two 64 KiB arrays: MOVAPD, MOVAPD, MULPD, ADDPD per pair.
Case Sse2Dot() {
  const uint32_t passes = Scaled(1500);
  constexpr uint32_t kPairs = 4096;  // 8192 doubles = 64 KiB per array
  Case c{"sse2_dot"};
  c.fpu = true;
  c.code = {0x41, 0xb8};
  Put32le(c.code, passes);                                // mov r8d, passes
  const Bytes pass = {
      0x31, 0xc0,                                         // P: xor eax, eax
      0x66, 0x0f, 0x57, 0xc0,                             //    xorpd xmm0, xmm0
      0xbe, 0x00, 0x00, 0x20, 0x00,                       //    mov esi, 0x200000
      0xbf, 0x00, 0x00, 0x30, 0x00,                       //    mov edi, 0x300000
      0xb9, 0x00, 0x10, 0x00, 0x00,                       //    mov ecx, 4096
      0x66, 0x0f, 0x28, 0x0c, 0x06,                       // L: movapd xmm1, [rsi+rax]
      0x66, 0x0f, 0x28, 0x14, 0x07,                       //    movapd xmm2, [rdi+rax]
      0x66, 0x0f, 0x59, 0xca,                             //    mulpd xmm1, xmm2
      0x66, 0x0f, 0x58, 0xc1,                             //    addpd xmm0, xmm1
      0x48, 0x83, 0xc0, 0x10,                             //    add rax, 16
      0xff, 0xc9,                                         //    dec ecx
      0x75, 0xe6,                                         //    jnz L
      0x41, 0xff, 0xc8,                                   //    dec r8d
      0x75, 0xcc};                                        //    jnz P
  c.code.insert(c.code.end(), pass.begin(), pass.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + passes * (5 + 7ull * kPairs + 2) + 1;
  c.init = [](GuestMemory& m) {
    FillDoubles(m, 0x200000, 2 * kPairs, 1.0);
    FillDoubles(m, 0x300000, 2 * kPairs, 0.5);
  };
  return c;
}

// 1 MiB copy with MOVDQU loads and MOVDQA stores (16 bytes per pair).
Case Sse2Memcpy() {
  const uint32_t passes = Scaled(60);
  Case c{"sse2_memcpy_1MiB"};
  c.fpu = true;
  c.code = {0x41, 0xb8};
  Put32le(c.code, passes);                                // mov r8d, passes
  const Bytes pass = {
      0x31, 0xc0,                                         // P: xor eax, eax
      0xb9, 0x00, 0x00, 0x01, 0x00,                       //    mov ecx, 65536
      0xf3, 0x0f, 0x6f, 0x80, 0x00, 0x00, 0x20, 0x00,     // L: movdqu xmm0, [rax+0x200000]
      0x66, 0x0f, 0x7f, 0x80, 0x00, 0x00, 0x40, 0x00,     //    movdqa [rax+0x400000], xmm0
      0x48, 0x83, 0xc0, 0x10,                             //    add rax, 16
      0xff, 0xc9,                                         //    dec ecx
      0x75, 0xe8,                                         //    jnz L
      0x41, 0xff, 0xc8,                                   //    dec r8d
      0x75, 0xdc};                                        //    jnz P
  c.code.insert(c.code.end(), pass.begin(), pass.end());
  c.code.push_back(0xf4);
  c.instructions = 1 + passes * (2 + 5ull * 65536 + 2) + 1;
  c.init = [](GuestMemory& m) { FillDoubles(m, 0x200000, 1 << 17, 3.0); };
  return c;
}

// x87: FLD, FMUL, FADD, FSTP on doubles in memory.
Case X87Loop() {
  const uint32_t n = Scaled(4e6);
  Case c{"x87_loop"};
  c.fpu = true;
  c.code = {0xdb, 0xe3,                                   //    fninit
            0xbe, 0x00, 0x00, 0x20, 0x00,                 //    mov esi, 0x200000
            0xb9};
  Put32le(c.code, n);                                     //    mov ecx, n
  const Bytes body = {0xdd, 0x06,                         // L: fld qword [rsi]
                      0xdc, 0x4e, 0x08,                   //    fmul qword [rsi+8]
                      0xdc, 0x46, 0x10,                   //    fadd qword [rsi+16]
                      0xdd, 0x5e, 0x18,                   //    fstp qword [rsi+24]
                      0xff, 0xc9,                         //    dec ecx
                      0x75, 0xf1};                        //    jnz L
  c.code.insert(c.code.end(), body.begin(), body.end());
  c.code.push_back(0xf4);
  c.instructions = 3 + 6ull * n + 1;
  c.init = [](GuestMemory& m) {
    const double v[3] = {1.5, 0.999, 0.25};
    m.Write(0x200000, v, sizeof v);
  };
  return c;
}

void PrintLine(const std::string& name, const Measurement& v, const Measurement& u) {
  if (!v.ok || !u.ok) {
    std::printf("case=%s error=\"%s%s\"\n", name.c_str(), v.error.c_str(), u.error.c_str());
    return;
  }
  std::printf("case=%s vmrr_mips=%.1f unicorn_mips=%.1f ratio=%.3f\n", name.c_str(), v.mips(),
              u.mips(), v.mips() / u.mips());
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--scale=", 8) == 0) g_scale = std::atof(argv[i] + 8);
    if (std::strncmp(argv[i], "--case=", 7) == 0) g_case_filter = argv[i] + 7;
    if (std::strcmp(argv[i], "--vmrr-only") == 0) g_vmrr_only = true;
  }
  const int reps = 3;
  for (const Case& c : {IntegerLoop(), MemoryLoop(), RepMovsb(), RepStosq(), CallReturn(),
                        IntLoop(), Sse2Dot(), Sse2Memcpy(), X87Loop()}) {
    if (!Selected(c.name)) continue;
    const Measurement v = Best(reps, [&] { return RunVmrr(c); });
    if (g_vmrr_only) {
      std::printf("case=%s vmrr_mips=%.1f%s%s\n", c.name.c_str(), v.mips(), v.ok ? "" : " error=",
                  v.error.c_str());
      continue;
    }
    const Measurement u = Best(reps, [&] { return RunUnicorn(c); });
    PrintLine(c.name, v, u);
    std::fflush(stdout);
  }
  if (Selected("ext_interrupt_every_100")) {
    // External interrupt every 100 instructions (vmrr only: Unicorn has no interrupt line).
    Case c{"ext_interrupt_every_100"};
    c.int_gate = true;
    c.code = {0xff, 0xc0, 0xeb, 0xfc, 0xf4};  // L: inc eax; jmp L
    const Measurement v =
        Best(reps, [&] { return RunVmrrExternalInterrupts(c, 100, Scaled(20e6)); });
    if (v.ok) std::printf("case=%s vmrr_mips=%.1f unicorn_mips=NA ratio=NA\n", c.name.c_str(), v.mips());
    else std::printf("case=%s error=\"%s\"\n", c.name.c_str(), v.error.c_str());
  }
  if (Selected("icount_overhead")) {
    const Case c = IntegerLoop();
    const Measurement one = Best(reps, [&] { return RunVmrr(c); });
    const Measurement sliced = Best(reps, [&] { return RunVmrr(c, 10000); });
    if (one.ok && sliced.ok) {
      std::printf("case=icount_overhead vmrr_mips_one_target=%.1f vmrr_mips_target_every_10000=%.1f "
                  "overhead_percent=%.2f\n",
                  one.mips(), sliced.mips(), (one.mips() / sliced.mips() - 1) * 100);
    } else {
      std::printf("case=icount_overhead error=\"%s%s\"\n", one.error.c_str(), sliced.error.c_str());
    }
  }
  return 0;
}
