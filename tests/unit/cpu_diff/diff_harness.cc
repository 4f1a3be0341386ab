// vmrr-vs-Unicorn runners and the outcome comparison of the differential CPU test.
#include "tests/unit/cpu_diff/diff_harness.h"

#include <Zydis/Zydis.h>
#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace vmrr::testing {
namespace {

constexpr uint64_t kRamBytes = 1 << 20;
constexpr uint64_t kMaxInstructions = 100000;

const int kUcGpr64[16] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                          UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                          UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                          UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};
const int kUcGpr32[8] = {UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                         UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI};
const char* const kGprNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

bool Is64(FlatMode m) { return m == FlatMode::kLong64; }
bool IsReal(FlatMode m) { return m == FlatMode::kReal; }
unsigned GprCount(FlatMode m) { return Is64(m) ? 16 : 8; }

std::string FlagsText(uint64_t f) {
  std::string t;
  const struct { uint64_t bit; const char* name; } kBits[] = {
      {kFlagCf, "CF"}, {kFlagPf, "PF"}, {kFlagAf, "AF"}, {kFlagZf, "ZF"},
      {kFlagSf, "SF"}, {kFlagDf, "DF"}, {kFlagOf, "OF"}};
  for (const auto& b : kBits) {
    if (f & b.bit) {
      if (!t.empty()) t += ' ';
      t += b.name;
    }
  }
  return t.empty() ? "-" : t;
}

}  // namespace

// The sequence ends with PUSHF: the flags are read from the stack slot (Unicorn's register
// read of EFLAGS can be stale after a block that ends in a branch) and the slot is blanked so
// that the stack comparison does not see undefined flags.
void TakePushedFlags(FlatMode mode, DiffOutcome* o) {
  const unsigned w = Is64(mode) ? 8 : IsReal(mode) ? 2 : 4;
  const uint64_t sp = o->gpr[kRsp] & (Is64(mode) ? ~0ull : IsReal(mode) ? 0xffffull : 0xffffffffull);
  if (sp < kStackBase || sp + w > kStackBase + kStackSize) {
    o->error = "stack pointer outside the stack page at the end";
    return;
  }
  uint64_t f = 0;
  std::memcpy(&f, &o->stack[sp - kStackBase], w);
  std::memset(&o->stack[sp - kStackBase], 0, w);
  o->rflags = f;
}

std::string Disassemble(FlatMode mode, const std::vector<uint8_t>& code, uint64_t address) {
  ZydisDecoder dec;
  if (Is64(mode)) ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  else if (mode == FlatMode::kReal || mode == FlatMode::kProt16)
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
  else ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  ZydisFormatter fmt;
  ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
  std::string out;
  size_t pos = 0;
  while (pos < code.size()) {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    char line[256];
    char text[160];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code.data() + pos, code.size() - pos, &in,
                                             ops))) {
      std::snprintf(line, sizeof line, "    %08" PRIx64 ": (bad) %02x\n", address + pos,
                    code[pos]);
      out += line;
      ++pos;
      continue;
    }
    ZydisFormatterFormatInstruction(&fmt, &in, ops, in.operand_count_visible, text,
                                    sizeof text, address + pos, nullptr);
    std::vector<uint8_t> bytes(code.begin() + pos, code.begin() + pos + in.length);
    std::snprintf(line, sizeof line, "    %08" PRIx64 ": %-30s %s\n", address + pos,
                  fmt::format("{:02x}", fmt::join(bytes, "")).c_str(), text);
    out += line;
    pos += in.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// vmrr

constexpr uint64_t kCr0FpBits = 0x22;    // MP, NE
constexpr uint64_t kCr0FpClear = 0xc;    // EM, TS
constexpr uint64_t kCr4FpBits = 0x600;   // OSFXSR, OSXMMEXCPT

VmrrSide::VmrrSide(FlatMode mode, bool fp) : platform_(kRamBytes), cpu_(platform_) {
  base_ = MakeFlatState(mode, platform_.memory());
  if (fp) {
    base_.cr0 = (base_.cr0 | kCr0FpBits) & ~kCr0FpClear;
    base_.cr4 |= kCr4FpBits;
  }
}

DiffOutcome VmrrSide::Run(const DiffCase& c) {
  DiffOutcome o;
  GuestMemory& m = platform_.memory();
  std::vector<uint8_t> code = c.code;
  code.push_back(0x9c);  // PUSHF: flags are compared as the guest itself stores them
  code.push_back(0xf4);  // HLT
  m.Write(kCodeBase, code.data(), code.size());
  m.Write(kDataBase, c.data.data(), c.data.size());
  m.Write(kStackBase, c.stack.data(), c.stack.size());
  CpuState s = base_;
  for (int i = 0; i < 16; ++i) s.gpr[i] = c.gpr[i];
  s.rflags = c.rflags | 2;
  cpu_.SetState(s);
  const uint64_t start = cpu_.icount();
  RunResult r;
  if (c.single_step) {
    do {
      r = cpu_.Run(cpu_.icount() + 1);
      if (r.reason == StopReason::kTargetReached && cpu_.icount() != r.icount) {
        o.error = "Run returned an icount different from icount()";
        return o;
      }
    } while (r.reason == StopReason::kTargetReached && cpu_.icount() - start < kMaxInstructions);
  } else {
    r = cpu_.Run(start + kMaxInstructions);
  }
  const CpuState& f = cpu_.state();
  o.retired = cpu_.icount() - start;
  if (r.reason != StopReason::kHalted) {
    o.error = std::string("vmrr stopped with '") + StopReasonName(r.reason) + "' at rip " +
              std::to_string(f.rip);
    return o;
  }
  for (int i = 0; i < 16; ++i) o.gpr[i] = f.gpr[i];
  o.rflags = f.rflags;
  const uint64_t end = kCodeBase + c.code.size() + 1;
  if (f.rip == end + 1) {
    o.rip = end;
  } else if (f.rip > kFaultStubs && f.rip <= kFaultStubs + 256) {
    o.faulted = true;
    o.vector = static_cast<unsigned>(f.rip - kFaultStubs - 1);
    o.rip = f.rip;
  } else {
    char b[96];
    std::snprintf(b, sizeof b, "vmrr halted at unexpected rip %#" PRIx64, f.rip);
    o.error = b;
    return o;
  }
  o.data.resize(kDataSize);
  o.stack.resize(kStackSize);
  m.Read(kDataBase, o.data.data(), kDataSize);
  m.Read(kStackBase, o.stack.data(), kStackSize);
  if (!o.faulted) TakePushedFlags(c.mode, &o);
  return o;
}

// ---------------------------------------------------------------------------------------
// Unicorn

UnicornSide::UnicornSide(FlatMode mode, bool fp) : mode_(mode) {
  uc_err e = uc_open(UC_ARCH_X86, Is64(mode) ? UC_MODE_64 : IsReal(mode) ? UC_MODE_16 : UC_MODE_32,
                     &uc_);
  if (e != UC_ERR_OK) {
    uc_ = nullptr;
    return;
  }
  // A model with MOVBE, POPCNT, LZCNT and BMI1, which vmrr's CPUID model advertises too;
  // QEMU decodes F3 0F BD as BSR on models without LZCNT.
  uc_ctl_set_cpu_model(uc_, UC_CPU_X86_HASWELL);
  if (fp) {
    // Unicorn 2.0.1 writes CR0/CR4 through cpu_x86_update_cr0/cr4, which recompute the
    // MP/EM/TS and OSFXSR hflags its SSE/x87 translation checks.
    uint64_t cr0 = 0, cr4 = 0;
    uc_reg_read(uc_, UC_X86_REG_CR0, &cr0);
    uc_reg_read(uc_, UC_X86_REG_CR4, &cr4);
    cr0 = (cr0 | kCr0FpBits) & ~kCr0FpClear;
    cr4 |= kCr4FpBits;
    uc_reg_write(uc_, UC_X86_REG_CR0, &cr0);
    uc_reg_write(uc_, UC_X86_REG_CR4, &cr4);
  }
  uc_mem_map(uc_, 0, kRamBytes, UC_PROT_ALL);
  uc_hook_add(uc_, &hook_, UC_HOOK_INTR, reinterpret_cast<void*>(&UnicornSide::OnInterrupt),
              this, 1, 0);
  // QEMU remembers the last exception across uc_emu_start calls and reports the next one as a
  // double fault (vector 8); restoring a clean CPU context before each case resets that.
  if (uc_context_alloc(uc_, &clean_) == UC_ERR_OK) uc_context_save(uc_, clean_);
}

UnicornSide::~UnicornSide() {
  if (clean_) uc_context_free(clean_);
  if (uc_) uc_close(uc_);
}

void UnicornSide::OnInterrupt(uc_engine* uc, uint32_t intno, void* user) {
  auto* self = static_cast<UnicornSide*>(user);
  if (self->vector_ < 0) self->vector_ = static_cast<int>(intno);
  uc_emu_stop(uc);
}

DiffOutcome UnicornSide::Run(const DiffCase& c) {
  DiffOutcome o;
  if (!uc_) {
    o.error = "uc_open failed";
    return o;
  }
  std::vector<uint8_t> code = c.code;
  code.push_back(0x9c);  // PUSHF
  code.push_back(0xf4);
  uc_mem_write(uc_, kCodeBase, code.data(), code.size());
  uc_mem_write(uc_, kDataBase, c.data.data(), c.data.size());
  uc_mem_write(uc_, kStackBase, c.stack.data(), c.stack.size());
  uc_ctl_remove_cache(uc_, kCodeBase, kCodeBase + kCodeSize);
  if (clean_) uc_context_restore(uc_, clean_);
  const bool is64 = Is64(mode_);
  const unsigned n = GprCount(mode_);
  for (unsigned i = 0; i < n; ++i) {
    uint64_t v = is64 ? c.gpr[i] : c.gpr[i] & 0xffffffffu;
    uc_reg_write(uc_, is64 ? kUcGpr64[i] : kUcGpr32[i], &v);
  }
  uint64_t fl = c.rflags | 2;
  uc_reg_write(uc_, UC_X86_REG_EFLAGS, &fl);
  vector_ = -1;
  const uint64_t end = kCodeBase + c.code.size() + 1;
  uc_err e = uc_emu_start(uc_, kCodeBase, end, 0, 0);
  if (vector_ >= 0) {
    o.faulted = true;
    o.vector = static_cast<unsigned>(vector_);
  } else if (e == UC_ERR_INSN_INVALID) {
    o.faulted = true;
    o.vector = 6;
  } else if (e != UC_ERR_OK) {
    o.error = std::string("unicorn: ") + uc_strerror(e);
    return o;
  }
  uint64_t stop_rip = 0;
  uc_reg_read(uc_, is64 ? UC_X86_REG_RIP : UC_X86_REG_EIP, &stop_rip);
  if (!o.faulted && (stop_rip & (is64 ? ~0ull : 0xffffffffull)) != end) {
    // Unicorn 2.0.1 ends emulation silently (UC_ERR_OK, no interrupt hook) on some
    // exceptions (#UD with a hook installed, #GP of a misaligned CMPXCHG16B, ...).
    o.faulted = true;
    o.vector = kUnknownVector;
  }
  for (unsigned i = 0; i < n; ++i) {
    uint64_t v = 0;
    uc_reg_read(uc_, is64 ? kUcGpr64[i] : kUcGpr32[i], &v);
    o.gpr[i] = is64 ? v : v & 0xffffffffu;
  }
  uint64_t rip = 0, flags = 0;
  uc_reg_read(uc_, is64 ? UC_X86_REG_RIP : UC_X86_REG_EIP, &rip);
  uc_reg_read(uc_, UC_X86_REG_EFLAGS, &flags);
  o.rip = is64 ? rip : rip & 0xffffffffu;
  o.rflags = flags & 0xffffffffu;
  o.data.resize(kDataSize);
  o.stack.resize(kStackSize);
  uc_mem_read(uc_, kDataBase, o.data.data(), kDataSize);
  uc_mem_read(uc_, kStackBase, o.stack.data(), kStackSize);
  if (!o.faulted) TakePushedFlags(mode_, &o);
  return o;
}

// ---------------------------------------------------------------------------------------
// Comparison

std::string FxImageText(const uint8_t* img, unsigned xmm_count) {
  auto get = [&](int off, int len) {
    uint64_t x = 0;
    std::memcpy(&x, img + off, static_cast<size_t>(len));
    return x;
  };
  std::string t = fmt::format("    fcw={:04x} fsw={:04x} ftw={:02x} mxcsr={:08x}\n", get(0, 2),
                              get(2, 2), get(4, 1), get(24, 4));
  for (int i = 0; i < 8; ++i) {
    t += fmt::format("    r{}={:04x}:{:016x}{}", i, get(32 + 16 * i + 8, 2), get(32 + 16 * i, 8),
                     i % 4 == 3 ? "\n" : "");
  }
  for (unsigned i = 0; i < xmm_count; ++i) {
    const int off = 160 + 16 * static_cast<int>(i);
    t += fmt::format("    xmm{}={:016x}{:016x}{}", i, get(off + 8, 8), get(off, 8),
                     i % 2 == 1 ? "\n" : "");
  }
  return t;
}

std::string CompareOutcomes(const DiffCase& c, const DiffOutcome& v, const DiffOutcome& u,
                            const char* other_name) {
  std::string diffs;
  char b[256];
  const unsigned n = GprCount(c.mode);
  const uint64_t regmask = Is64(c.mode) ? ~uint64_t{0} : 0xffffffffu;
  if (!v.error.empty()) diffs += "  vmrr error: " + v.error + "\n";
  if (!u.error.empty()) diffs += std::string("  ") + other_name + " error: " + u.error + "\n";
  if (diffs.empty()) {
    // If Unicorn ended without reporting a vector, only "both faulted" can be checked.
    const bool vector_known = u.vector != kUnknownVector;
    if (v.faulted != u.faulted || (v.faulted && vector_known && v.vector != u.vector)) {
      std::snprintf(b, sizeof b, "  fault: vmrr %s %u, %s %s %u\n",
                    v.faulted ? "vector" : "none", v.vector, other_name,
                    u.faulted ? "vector" : "none", u.vector);
      diffs += b;
    } else {
      for (unsigned i = 0; i < n; ++i) {
        if (c.ignored_regs & (1u << i)) continue;
        if (v.faulted && i == kRsp) continue;  // vmrr pushed an exception frame
        if ((v.gpr[i] & regmask) != (u.gpr[i] & regmask)) {
          std::snprintf(b, sizeof b, "  %s: vmrr %#" PRIx64 " %s %#" PRIx64 "\n",
                        kGprNames[i], v.gpr[i] & regmask, other_name, u.gpr[i] & regmask);
          diffs += b;
        }
      }
      if (!v.faulted) {
        if (v.rip != u.rip) {
          std::snprintf(b, sizeof b, "  rip: vmrr %#" PRIx64 " %s %#" PRIx64 "\n", v.rip,
                        other_name, u.rip);
          diffs += b;
        }
        if ((v.rflags ^ u.rflags) & c.flag_mask) {
          std::snprintf(b, sizeof b, "  flags (compared %s): vmrr %s, %s %s\n",
                        FlagsText(c.flag_mask).c_str(),
                        FlagsText(v.rflags & c.flag_mask).c_str(), other_name,
                        FlagsText(u.rflags & c.flag_mask).c_str());
          diffs += b;
        }
      }
      auto cmp_mem = [&](const char* name, uint64_t base, const std::vector<uint8_t>& a,
                         const std::vector<uint8_t>& z, const std::vector<uint8_t>& init) {
        unsigned shown = 0;
        for (size_t i = 0; i < a.size() && i < z.size(); ++i) {
          if (a[i] == z[i]) continue;
          if (shown++ < 8) {
            std::snprintf(b, sizeof b, "  %s[%#" PRIx64 "]: initial %02x vmrr %02x %s %02x\n",
                          name, base + i, i < init.size() ? init[i] : 0, a[i], other_name, z[i]);
            diffs += b;
          }
        }
        if (shown > 8) diffs += "  ... (" + std::to_string(shown) + " bytes differ)\n";
      };
      if (c.fx_out >= 0 && v.data.size() >= static_cast<size_t>(c.fx_out) + 512 &&
          u.data.size() >= static_cast<size_t>(c.fx_out) + 512) {
        // The FXSAVE output image, field by field; then blank it for the byte comparison.
        const uint8_t* a = &v.data[static_cast<size_t>(c.fx_out)];
        const uint8_t* z = &u.data[static_cast<size_t>(c.fx_out)];
        auto field = [&](const char* name, int off, int len) {
          if (std::memcmp(a + off, z + off, static_cast<size_t>(len)) == 0) return;
          std::string x, y;
          for (int i = len - 1; i >= 0; --i) {
            x += fmt::format("{:02x}", a[off + i]);
            y += fmt::format("{:02x}", z[off + i]);
          }
          diffs += fmt::format("  {}: vmrr {} {} {}\n", name, x, other_name, y);
        };
        field("fcw", 0, 2);
        if (((a[2] | a[3] << 8) ^ (z[2] | z[3] << 8)) & ~c.fsw_ignore) field("fsw", 2, 2);
        field("ftw(abridged)", 4, 1);
        field("fxsave[5]", 5, 1);
        field("mxcsr", 24, 4);
        field("mxcsr_mask", 28, 4);
        for (int i = 0; i < 8; ++i) {
          field(fmt::format("st/mm r{}", i).c_str(), 32 + 16 * i, 10);
          field(fmt::format("fxsave[{}..{}] (reserved)", 42 + 16 * i, 47 + 16 * i).c_str(),
                42 + 16 * i, 6);
        }
        for (int i = 0; i < (Is64(c.mode) ? 16 : 8); ++i) {
          field(fmt::format("xmm{}", i).c_str(), 160 + 16 * i, 16);
        }
        std::vector<uint8_t> va = v.data, ua = u.data;
        std::memset(&va[static_cast<size_t>(c.fx_out)], 0, 416);
        std::memset(&ua[static_cast<size_t>(c.fx_out)], 0, 416);
        cmp_mem("data", kDataBase, va, ua, c.data);
      } else {
        cmp_mem("data", kDataBase, v.data, u.data, c.data);
      }
      if (!v.faulted) cmp_mem("stack", kStackBase, v.stack, u.stack, c.stack);
    }
  }
  if (diffs.empty()) return "";

  std::string r = "MISMATCH mode=" + std::string(FlatModeName(c.mode)) + " origin=" + c.origin +
                  (c.single_step ? " (vmrr single-stepped)" : "") + "\n";
  r += fmt::format("  bytes={:02x}\n", fmt::join(c.code, ""));
  r += Disassemble(c.mode, c.code, kCodeBase);
  r += "  initial:";
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, " %s=%#" PRIx64, kGprNames[i], c.gpr[i] & regmask);
    r += b;
  }
  std::snprintf(b, sizeof b, " rflags=%#" PRIx64 " (%s)\n", c.rflags,
                FlagsText(c.rflags).c_str());
  r += b;
  auto result = [&](const char* who, const DiffOutcome& o) {
    std::string t = std::string("  ") + who + ":";
    if (!o.error.empty()) return t + " error " + o.error + "\n";
    if (o.faulted) {
      if (o.vector == kUnknownVector) std::snprintf(b, sizeof b, " fault (vector not reported);");
      else std::snprintf(b, sizeof b, " fault vector %u;", o.vector);
      t += b;
    }
    for (unsigned i = 0; i < n; ++i) {
      std::snprintf(b, sizeof b, " %s=%#" PRIx64, kGprNames[i], o.gpr[i] & regmask);
      t += b;
    }
    std::snprintf(b, sizeof b, " rip=%#" PRIx64 " rflags=%#" PRIx64 " (%s)\n", o.rip, o.rflags,
                  FlagsText(o.rflags).c_str());
    return t + b;
  };
  if (c.fx_in >= 0 && c.data.size() >= static_cast<size_t>(c.fx_in) + 512) {
    r += "  initial FP state (FXRSTOR image at data+" + std::to_string(c.fx_in) + "):\n" +
         FxImageText(&c.data[static_cast<size_t>(c.fx_in)], Is64(c.mode) ? 16 : 8);
  }
  r += result("vmrr   ", v);
  r += result(other_name, u);
  if (c.fx_out >= 0) {
    for (const DiffOutcome* o : {&v, &u}) {
      if (o->faulted || o->data.size() < static_cast<size_t>(c.fx_out) + 512) continue;
      r += std::string("  ") + (o == &v ? "vmrr" : other_name) + " final FP state:\n" +
           FxImageText(&o->data[static_cast<size_t>(c.fx_out)], Is64(c.mode) ? 16 : 8);
    }
  }
  r += "  differences:\n" + diffs;
  return r;
}

}  // namespace vmrr::testing
