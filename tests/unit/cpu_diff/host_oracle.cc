// Host-CPU runner of FP/SIMD differential cases (see host_oracle.h).
#include "tests/unit/cpu_diff/host_oracle.h"

#include <cpuid.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <cstring>
#include <vector>

namespace vmrr::testing {
namespace {

constexpr size_t kCodePage = 0x10000;
constexpr size_t kScratch = 0x2000;      // data_ + kScratch: the stub's scratch slots
constexpr uint64_t kHostFlagsMask = 0x8d5;  // CF PF AF ZF SF OF (DF set by the case code only)

// GPRs the stub loads and stores (all but RSP, the case's stack, and R15, the data base).
constexpr int kMoved[] = {0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13, 14};

sigjmp_buf g_jump;
volatile sig_atomic_t g_active = 0;
long long g_gregs[NGREG];
struct sigaction g_old[4];
const int kSignals[4] = {SIGFPE, SIGSEGV, SIGILL, SIGBUS};
alignas(64) uint8_t g_host_fx[512];
int g_users = 0;

void OnSignal(int sig, siginfo_t* info, void* ctx) {
  (void)info;
  if (!g_active) {
    // Not ours: hand the signal back to the previous handler (the instruction re-executes).
    for (int i = 0; i < 4; ++i) {
      if (kSignals[i] == sig) sigaction(sig, &g_old[i], nullptr);
    }
    return;
  }
  const auto* uc = static_cast<const ucontext_t*>(ctx);
  for (int i = 0; i < NGREG; ++i) g_gregs[i] = uc->uc_mcontext.gregs[i];
  g_active = 0;
  siglongjmp(g_jump, 1);
}

void Emit(std::vector<uint8_t>& v, std::initializer_list<uint8_t> b) { v.insert(v.end(), b); }
void Emit32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
// mov reg, [base + disp32] (load) or mov [base + disp32], reg; base is RDI, RSI or R15.
void MovMem(std::vector<uint8_t>& v, bool load, int reg, int base, uint32_t disp) {
  v.push_back(static_cast<uint8_t>(0x48 | (reg >= 8 ? 4 : 0) | (base >= 8 ? 1 : 0)));
  v.push_back(load ? 0x8b : 0x89);
  v.push_back(static_cast<uint8_t>(0x80 | ((reg & 7) << 3) | (base & 7)));
  Emit32(v, disp);
}

// Map from the kernel's greg order to vmrr's GPR index.
int GregOf(int gpr) {
  static const int kMap[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                               REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                               REG_R12, REG_R13, REG_R14, REG_R15};
  return kMap[gpr];
}

}  // namespace

HostSide::HostSide() {
  void* c = mmap(nullptr, kCodePage, PROT_READ | PROT_WRITE | PROT_EXEC,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* d = mmap(nullptr, kDataSize + 0x1000, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (c == MAP_FAILED || d == MAP_FAILED) return;
  code_ = static_cast<uint8_t*>(c);
  data_ = static_cast<uint8_t*>(d);
  if (g_users++ == 0) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnSignal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
  }
}

HostSide::~HostSide() {
  if (!code_) return;
  if (--g_users == 0) {
    for (int i = 0; i < 4; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
  }
  munmap(code_, kCodePage);
  munmap(data_, kDataSize + 0x1000);
}

DiffOutcome HostSide::Run(const DiffCase& c) {
  DiffOutcome o;
  if (!code_) {
    o.error = "host oracle: mmap failed";
    return o;
  }
  if (c.mode != FlatMode::kLong64 || c.gpr[15] != kDataBase || c.data.size() != kDataSize) {
    o.error = "host oracle: not a long-mode FP case with R15 = data base";
    return o;
  }
  // Stub: save callee-saved registers, R15 = data, flags and GPRs from the table (RDI), the
  // case code, then GPRs and flags back to the table.
  std::vector<uint8_t> s;
  Emit(s, {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57});
  MovMem(s, false, 7, 6, kScratch);             // [rsi+scratch] = table
  Emit(s, {0x49, 0x89, 0xf7});                  // mov r15, rsi
  Emit(s, {0xff, 0xb7}); Emit32(s, 16 * 8);     // push qword [rdi+128]
  Emit(s, {0x9d});                              // popfq
  for (int r : kMoved) MovMem(s, true, r, 7, static_cast<uint32_t>(8 * r));
  MovMem(s, true, 7, 7, 8 * 7);                 // rdi last
  s.insert(s.end(), c.code.begin(), c.code.end());
  MovMem(s, false, 7, 15, kScratch + 8);        // [r15+scratch+8] = rdi
  MovMem(s, true, 7, 15, kScratch);             // rdi = table
  for (int r : kMoved) MovMem(s, false, r, 7, static_cast<uint32_t>(8 * r));
  Emit(s, {0x9c, 0x8f, 0x87}); Emit32(s, 16 * 8);  // pushfq; pop qword [rdi+128]
  MovMem(s, true, 0, 15, kScratch + 8);
  MovMem(s, false, 0, 7, 8 * 7);
  Emit(s, {0xfc, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3});
  if (s.size() > kCodePage) {
    o.error = "host oracle: code too long";
    return o;
  }
  std::memcpy(code_, s.data(), s.size());
  std::memcpy(data_, c.data.data(), kDataSize);
  uint64_t table[17];
  for (int i = 0; i < 16; ++i) table[i] = c.gpr[i];
  table[16] = (c.rflags & kHostFlagsMask) | 2;
  using Fn = void (*)(uint64_t*, uint8_t*);
  const Fn fn = reinterpret_cast<Fn>(code_);
  asm volatile("fxsave64 %0" : "=m"(g_host_fx) : : "memory");
  g_active = 1;
  volatile bool faulted = false;
  if (sigsetjmp(g_jump, 1) == 0) {
    fn(table, data_);
  } else {
    faulted = true;
  }
  g_active = 0;
  asm volatile("fxrstor64 %0" : : "m"(g_host_fx) : "memory");

  o.data.assign(data_, data_ + kDataSize);
  if (faulted) {
    o.faulted = true;
    o.vector = static_cast<unsigned>(g_gregs[REG_TRAPNO]);
    for (int i = 0; i < 16; ++i) o.gpr[i] = static_cast<uint64_t>(g_gregs[GregOf(i)]);
    o.gpr[kRsp] = c.gpr[kRsp];
    o.gpr[15] = c.gpr[15];
    return o;
  }
  // vmrr models an Intel CPU, whose FXSAVE MXCSR_MASK is 0xFFFF. AMD hosts also report bit 17,
  // the misaligned-SSE mode bit (MXCSR.MM) their model has: a property of the host's model,
  // not a result, so it is cleared before the comparison (the image exists: nothing faulted).
  if (c.fx_out >= 0 && static_cast<size_t>(c.fx_out) + 32 <= o.data.size()) {
    static const bool amd = [] {
      unsigned a, b, cx, d;
      return __get_cpuid(0, &a, &b, &cx, &d) && b == 0x68747541u;  // "Auth"enticAMD
    }();
    if (amd) o.data[static_cast<size_t>(c.fx_out) + 30] &= static_cast<uint8_t>(~0x02);
  }
  for (int i = 0; i < 16; ++i) o.gpr[i] = table[i];
  o.gpr[kRsp] = c.gpr[kRsp] - 8;  // the emulators' trailing PUSHF
  o.gpr[15] = c.gpr[15];
  o.rflags = table[16];
  o.rip = kCodeBase + c.code.size() + 1;
  o.stack = c.stack;
  std::memset(&o.stack[o.gpr[kRsp] - kStackBase], 0, 8);
  return o;
}

}  // namespace vmrr::testing
