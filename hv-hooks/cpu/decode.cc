// Decoding with Zydis into pre-resolved operations, the decoded-block builder, and the one
// dispatch table from mnemonic to handler (filled by each instruction-family file).
#include <Zydis/Zydis.h>

#include <algorithm>
#include <array>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

// Raises the exception in op.aux: decode failures (#UD, #GP for >15 bytes) and the x87/MMX/
// SSE groups, whose fault depends on CR0 at run time.
enum UdClass : uint64_t { kUdPlain = 0, kUdX87 = 1, kUdSimd = 2, kUdGp = 3 };
void OpUndefined(CpuCore& c, const Op& op) {
  const bool em = c.s.cr0 & 4, ts = c.s.cr0 & 8;
  switch (op.aux) {
    case kUdX87:
      if (em || ts) return c.FaultNoErr(7);
      return c.Ud();
    case kUdSimd:
      if (em) return c.Ud();
      if (ts) return c.FaultNoErr(7);
      return c.Ud();
    case kUdGp:
      return c.Gp(0);
    default:
      return c.Ud();
  }
}

struct Table {
  std::array<Handler, ZYDIS_MNEMONIC_MAX_VALUE + 1> fn{};
  Table() {
    RegisterAlu(fn.data());
    RegisterMulDiv(fn.data());
    RegisterBitOps(fn.data());
    RegisterString(fn.data());
    RegisterControl(fn.data());
    RegisterDataMove(fn.data());
    RegisterSystem(fn.data());
    RegisterInterrupts(fn.data());
    RegisterFpu(fn.data());
    RegisterSse(fn.data());
    RegisterX87(fn.data());
  }
};
const Table& DispatchTable() {
  static const Table table;
  return table;
}

bool IsAllowedExt(ZydisISAExt e) {
  switch (e) {
    case ZYDIS_ISA_EXT_BASE: case ZYDIS_ISA_EXT_LONGMODE: case ZYDIS_ISA_EXT_LZCNT:
    case ZYDIS_ISA_EXT_BMI1: case ZYDIS_ISA_EXT_MOVBE: case ZYDIS_ISA_EXT_RDRAND:
    case ZYDIS_ISA_EXT_RDSEED: case ZYDIS_ISA_EXT_RDTSCP: case ZYDIS_ISA_EXT_PAUSE:
    case ZYDIS_ISA_EXT_CLFSH: case ZYDIS_ISA_EXT_CET:
      return true;
    default:
      return false;
  }
}

// The x87/MMX/SSE/XSAVE groups: only the instructions fpu.cc implements leave OpUndefined.
bool IsFpExt(ZydisISAExt e) {
  switch (e) {
    case ZYDIS_ISA_EXT_X87: case ZYDIS_ISA_EXT_MMX: case ZYDIS_ISA_EXT_SSE:
    case ZYDIS_ISA_EXT_SSE2: case ZYDIS_ISA_EXT_SSE3: case ZYDIS_ISA_EXT_SSSE3:
    case ZYDIS_ISA_EXT_XSAVE: case ZYDIS_ISA_EXT_XSAVEOPT:
      return true;
    default:
      return false;
  }
}

bool GprOf(ZydisRegister r, uint8_t* idx, bool* high8) {
  *high8 = false;
  if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_R15B) {
    int i = r - ZYDIS_REGISTER_AL;
    if (i < 4) *idx = static_cast<uint8_t>(i);
    else if (i < 8) { *idx = static_cast<uint8_t>(i - 4); *high8 = true; }
    else *idx = static_cast<uint8_t>(i - 4);
    return true;
  }
  if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W) { *idx = static_cast<uint8_t>(r - ZYDIS_REGISTER_AX); return true; }
  if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D) { *idx = static_cast<uint8_t>(r - ZYDIS_REGISTER_EAX); return true; }
  if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15) { *idx = static_cast<uint8_t>(r - ZYDIS_REGISTER_RAX); return true; }
  return false;
}

uint8_t SegOf(ZydisRegister r) {
  switch (r) {
    case ZYDIS_REGISTER_ES: return kEs;
    case ZYDIS_REGISTER_CS: return kCs;
    case ZYDIS_REGISTER_SS: return kSs;
    case ZYDIS_REGISTER_FS: return kFs;
    case ZYDIS_REGISTER_GS: return kGs;
    default: return kDs;
  }
}

// Instructions after which a block always ends (control transfer, mode or interrupt-state
// changes, I/O that may raise interrupts).
bool EndsBlock(const ZydisDecodedInstruction& in, const Op& op) {
  switch (in.meta.category) {
    case ZYDIS_CATEGORY_COND_BR: case ZYDIS_CATEGORY_UNCOND_BR: case ZYDIS_CATEGORY_CALL:
    case ZYDIS_CATEGORY_RET: case ZYDIS_CATEGORY_INTERRUPT: case ZYDIS_CATEGORY_SYSCALL:
    case ZYDIS_CATEGORY_SYSRET: case ZYDIS_CATEGORY_SYSTEM: case ZYDIS_CATEGORY_IO:
    case ZYDIS_CATEGORY_IOSTRINGOP:
      return true;
    default:
      break;
  }
  for (unsigned i = 0; i < op.nops; ++i) {
    if (op.o[i].kind == kOpSreg || op.o[i].kind == kOpCr || op.o[i].kind == kOpDr) return true;
  }
  switch (in.mnemonic) {
    case ZYDIS_MNEMONIC_STI: case ZYDIS_MNEMONIC_CLI: case ZYDIS_MNEMONIC_POPF:
    case ZYDIS_MNEMONIC_POPFD: case ZYDIS_MNEMONIC_POPFQ: case ZYDIS_MNEMONIC_HLT:
    case ZYDIS_MNEMONIC_WRMSR: case ZYDIS_MNEMONIC_RDMSR: case ZYDIS_MNEMONIC_CPUID:
    case ZYDIS_MNEMONIC_LOOP: case ZYDIS_MNEMONIC_LOOPE: case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JCXZ: case ZYDIS_MNEMONIC_JECXZ: case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_LDS: case ZYDIS_MNEMONIC_LES: case ZYDIS_MNEMONIC_LFS:
    case ZYDIS_MNEMONIC_LGS: case ZYDIS_MNEMONIC_LSS: case ZYDIS_MNEMONIC_RDTSC:
    case ZYDIS_MNEMONIC_RDTSCP:
      return true;
    default:
      return op.fn == OpUndefined || op.rep != 0;
  }
}

uint8_t CondOf(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_SETO: case ZYDIS_MNEMONIC_CMOVO: return 0;
    case ZYDIS_MNEMONIC_JNO: case ZYDIS_MNEMONIC_SETNO: case ZYDIS_MNEMONIC_CMOVNO: return 1;
    case ZYDIS_MNEMONIC_JB: case ZYDIS_MNEMONIC_SETB: case ZYDIS_MNEMONIC_CMOVB: return 2;
    case ZYDIS_MNEMONIC_JNB: case ZYDIS_MNEMONIC_SETNB: case ZYDIS_MNEMONIC_CMOVNB: return 3;
    case ZYDIS_MNEMONIC_JZ: case ZYDIS_MNEMONIC_SETZ: case ZYDIS_MNEMONIC_CMOVZ: return 4;
    case ZYDIS_MNEMONIC_JNZ: case ZYDIS_MNEMONIC_SETNZ: case ZYDIS_MNEMONIC_CMOVNZ: return 5;
    case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_SETBE: case ZYDIS_MNEMONIC_CMOVBE: return 6;
    case ZYDIS_MNEMONIC_JNBE: case ZYDIS_MNEMONIC_SETNBE: case ZYDIS_MNEMONIC_CMOVNBE: return 7;
    case ZYDIS_MNEMONIC_JS: case ZYDIS_MNEMONIC_SETS: case ZYDIS_MNEMONIC_CMOVS: return 8;
    case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_SETNS: case ZYDIS_MNEMONIC_CMOVNS: return 9;
    case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_SETP: case ZYDIS_MNEMONIC_CMOVP: return 10;
    case ZYDIS_MNEMONIC_JNP: case ZYDIS_MNEMONIC_SETNP: case ZYDIS_MNEMONIC_CMOVNP: return 11;
    case ZYDIS_MNEMONIC_JL: case ZYDIS_MNEMONIC_SETL: case ZYDIS_MNEMONIC_CMOVL: return 12;
    case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_SETNL: case ZYDIS_MNEMONIC_CMOVNL: return 13;
    case ZYDIS_MNEMONIC_JLE: case ZYDIS_MNEMONIC_SETLE: case ZYDIS_MNEMONIC_CMOVLE: return 14;
    case ZYDIS_MNEMONIC_JNLE: case ZYDIS_MNEMONIC_SETNLE: case ZYDIS_MNEMONIC_CMOVNLE: return 15;
    default: return 0;
  }
}

}  // namespace

Handler HandlerFor(unsigned mnemonic) {
  if (mnemonic > ZYDIS_MNEMONIC_MAX_VALUE) return OpUndefined;
  Handler h = DispatchTable().fn[mnemonic];
  return h ? h : OpUndefined;
}

// Decodes one instruction from bytes. Returns false with *status set when the bytes are not
// enough (ZYDIS_STATUS_NO_MORE_DATA); any other failure yields a faulting op.
bool CpuCore::DecodeOne(Op* op, const uint8_t* bytes, unsigned avail, int* status) {
  const auto* dec = static_cast<const ZydisDecoder*>(decoders);
  ZydisDecodedInstruction in;
  ZydisDecodedOperand zops[ZYDIS_MAX_OPERAND_COUNT];
  ZyanStatus st = ZydisDecoderDecodeFull(&dec[mode], bytes, avail, &in, zops);
  *status = static_cast<int>(st);
  *op = Op{};
  if (st == ZYDIS_STATUS_NO_MORE_DATA && avail < 15) return false;
  if (!ZYAN_SUCCESS(st)) {
    op->fn = OpUndefined;
    op->aux = (st == ZYDIS_STATUS_INSTRUCTION_TOO_LONG || st == ZYDIS_STATUS_NO_MORE_DATA)
                  ? kUdGp : kUdPlain;
    op->len = 0;
    op->ends = true;
    return true;
  }
  op->mnemonic = static_cast<uint16_t>(in.mnemonic);
  op->len = in.length;
  op->osize = static_cast<uint8_t>(in.operand_width / 8);
  op->asize = static_cast<uint8_t>(in.address_width / 8);
  op->opcode = in.opcode;
  op->map = static_cast<uint8_t>(in.opcode_map);
  op->lock = (in.attributes & ZYDIS_ATTRIB_HAS_LOCK) != 0;
  if (in.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE)) op->rep = 1;
  if (in.attributes & ZYDIS_ATTRIB_HAS_REPNE) op->rep = 2;
  const uint64_t segattr = in.attributes;
  if (segattr & ZYDIS_ATTRIB_HAS_SEGMENT_ES) op->seg_ovr = kEs;
  if (segattr & ZYDIS_ATTRIB_HAS_SEGMENT_CS) op->seg_ovr = kCs;
  if (segattr & ZYDIS_ATTRIB_HAS_SEGMENT_SS) op->seg_ovr = kSs;
  if (segattr & ZYDIS_ATTRIB_HAS_SEGMENT_DS) op->seg_ovr = kDs;
  if (segattr & ZYDIS_ATTRIB_HAS_SEGMENT_FS) op->seg_ovr = kFs;
  if (segattr & ZYDIS_ATTRIB_HAS_SEGMENT_GS) op->seg_ovr = kGs;
  op->cond = CondOf(in.mnemonic);
  op->far_branch = in.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;

  const ZydisISAExt ext = in.meta.isa_ext;
  const bool fence_like = in.mnemonic == ZYDIS_MNEMONIC_LFENCE ||
                          in.mnemonic == ZYDIS_MNEMONIC_SFENCE ||
                          in.mnemonic == ZYDIS_MNEMONIC_MFENCE ||
                          in.meta.category == ZYDIS_CATEGORY_PREFETCH ||
                          in.meta.category == ZYDIS_CATEGORY_WIDENOP;
  // POPCNT is advertised (CPUID.1:ECX[23]) though Zydis files it under SSE4.
  const bool popcnt = in.mnemonic == ZYDIS_MNEMONIC_POPCNT;
  // SSE2 MOVSD/CMPSD share their mnemonics with the string instructions: they take the
  // SIMD handlers sse.cc gives, never the string ones.
  Handler simd_alias = nullptr;
  const bool string_alias = IsFpExt(ext) && (in.mnemonic == ZYDIS_MNEMONIC_CMPSD ||
                                             in.mnemonic == ZYDIS_MNEMONIC_MOVSD);
  if (string_alias)
    simd_alias = in.mnemonic == ZYDIS_MNEMONIC_CMPSD ? SseCmpsdHandler() : SseMovsdHandler();
  const bool fp_implemented = IsFpExt(ext) && in.encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY &&
                              (string_alias ? simd_alias != nullptr
                                            : DispatchTable().fn[in.mnemonic] != nullptr);
  if (!IsAllowedExt(ext) && !fence_like && !popcnt && !fp_implemented) {
    op->fn = OpUndefined;
    if (ext == ZYDIS_ISA_EXT_X87) op->aux = kUdX87;
    else if (ext == ZYDIS_ISA_EXT_MMX || ext == ZYDIS_ISA_EXT_SSE || ext == ZYDIS_ISA_EXT_SSE2 ||
             ext == ZYDIS_ISA_EXT_SSE3 || ext == ZYDIS_ISA_EXT_SSSE3 || ext == ZYDIS_ISA_EXT_SSE4)
      op->aux = kUdSimd;
    else op->aux = kUdPlain;
    op->len = in.length;
    op->ends = true;
    return true;
  }

  unsigned n = std::min<unsigned>(in.operand_count_visible, 3);
  op->nops = static_cast<uint8_t>(n);
  for (unsigned i = 0; i < n; ++i) {
    const ZydisDecodedOperand& z = zops[i];
    Operand& o = op->o[i];
    o.size = static_cast<uint8_t>(z.size / 8);
    switch (z.type) {
      case ZYDIS_OPERAND_TYPE_REGISTER: {
        ZydisRegisterClass cls = ZydisRegisterGetClass(z.reg.value);
        if (GprOf(z.reg.value, &o.reg, &o.high8)) {
          o.kind = kOpReg;
        } else if (cls == ZYDIS_REGCLASS_SEGMENT) {
          o.kind = kOpSreg;
          o.reg = SegOf(z.reg.value);
          if (z.reg.value == ZYDIS_REGISTER_DS) o.reg = kDs;
        } else if (cls == ZYDIS_REGCLASS_CONTROL) {
          o.kind = kOpCr;
          o.reg = static_cast<uint8_t>(z.reg.value - ZYDIS_REGISTER_CR0);
        } else if (cls == ZYDIS_REGCLASS_MMX) {
          o.kind = kOpMmx;
          o.reg = static_cast<uint8_t>(z.reg.value - ZYDIS_REGISTER_MM0);
        } else if (cls == ZYDIS_REGCLASS_XMM) {
          o.kind = kOpXmm;
          o.reg = static_cast<uint8_t>(z.reg.value - ZYDIS_REGISTER_XMM0);
        } else if (cls == ZYDIS_REGCLASS_DEBUG) {
          o.kind = kOpDr;
          o.reg = static_cast<uint8_t>(z.reg.value - ZYDIS_REGISTER_DR0);
        } else {
          o.kind = kOpNone;  // e.g. implicit flags/x87; handlers do not rely on these
        }
        break;
      }
      case ZYDIS_OPERAND_TYPE_MEMORY: {
        o.kind = kOpMem;
        o.seg = SegOf(z.mem.segment);
        bool h;
        if (z.mem.base == ZYDIS_REGISTER_RIP || z.mem.base == ZYDIS_REGISTER_EIP) o.base = kRipReg;
        else if (!GprOf(z.mem.base, &o.base, &h)) o.base = kNoReg;
        if (!GprOf(z.mem.index, &o.index, &h)) o.index = kNoReg;
        o.scale = z.mem.scale;
        o.disp = static_cast<uint64_t>(z.mem.disp.value);
        // Zydis 4.0.0 reads "67h, REX.B, mod=00, SIB base=101" as base r13d without the
        // displacement; the SDM says SIB base 101 with mod 00 means no base and a disp32,
        // whatever REX.B says.
        if (in.address_width == 32 && in.raw.modrm.mod == 0 && in.raw.modrm.rm == 4 &&
            in.raw.sib.base == 5) {
          o.base = kNoReg;
          o.disp = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(in.raw.disp.value)));
        }
        break;
      }
      case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        o.kind = kOpImm;
        o.disp = z.imm.is_signed ? static_cast<uint64_t>(z.imm.value.s) : z.imm.value.u;
        break;
      case ZYDIS_OPERAND_TYPE_POINTER:
        o.kind = kOpPtr;
        o.sel = z.ptr.segment;
        o.disp = z.ptr.offset;
        break;
      default:
        break;
    }
  }
  // x87 escapes (D8-DF): the 11-bit opcode FOP (escape bits 0-2, then ModR/M), which x87.cc
  // decodes and records.
  if (in.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && (in.opcode & 0xf8) == 0xd8)
    op->aux = static_cast<uint64_t>((in.opcode & 7) << 8 | in.raw.modrm.mod << 6 |
                                    in.raw.modrm.reg << 3 | in.raw.modrm.rm);
  op->fn = string_alias ? simd_alias : HandlerFor(in.mnemonic);
  if (in.mnemonic == ZYDIS_MNEMONIC_MOV) {
    if (op->o[0].kind == kOpCr || op->o[1].kind == kOpCr) op->fn = MovCrHandler();
    if (op->o[0].kind == kOpDr || op->o[1].kind == kOpDr) op->fn = MovDrHandler();
  }
  if (Handler fast = FastHandlerFor(*op, mode)) op->fn = fast;
  op->ends = EndsBlock(in, *op);
  return true;
}

// Fetches through the paging path (one byte at a time as far as needed) and decodes; used
// for instructions that straddle a page or execute from outside RAM. false = fault pending.
bool CpuCore::DecodeAt(uint64_t rip, Op* op) {
  uint8_t buf[15];
  unsigned have = 0;
  int status = 0;
  while (have < 15) {
    uint64_t lin, v;
    if (!Linear(kCs, rip + have, 1, kExec, &lin) || !ReadLin(lin, 1, &v, kExec)) return false;
    buf[have++] = static_cast<uint8_t>(v);
    if (DecodeOne(op, buf, have, &status)) return true;
  }
  return DecodeOne(op, buf, 15, &status);
}

Block* CpuCore::DecodeBlock(uint64_t phys) {
  const uint64_t page = phys >> kGuestPageShift;
  const uint8_t* host = mem.Span(page << kGuestPageShift, kGuestPageSize);
  assert(host);
  unsigned pos = static_cast<unsigned>(phys & 0xfff);
  const unsigned start = pos;
  // See smc_pressure and decode_remaining. Every decode lowers the pressure by one, each
  // invalidation or early cut raises it by two: a page whose blocks keep being cut settles
  // at blocks of one or two instructions, one that stops returns to 64 in a few decodes.
  uint8_t& pressure = smc_pressure[page % kSmcSlots];
  const unsigned max_ops = static_cast<unsigned>(
      std::min<uint64_t>(64u >> pressure, std::max<uint64_t>(decode_remaining, 8)));
  if (pressure) --pressure;
  // Decoded into a reused scratch vector, then copied once: one allocation of the exact
  // size per block instead of a vector growing op by op.
  std::vector<Op>& ops = decode_scratch;
  ops.clear();
  while (ops.size() < max_ops) {
    unsigned avail = std::min<unsigned>(15, 4096 - pos);
    Op op;
    int status;
    if (!DecodeOne(&op, host + pos, avail, &status)) break;  // straddles
    if (op.fn == OpUndefined && !ops.empty()) break;  // fault op starts its own block
    op.offset = pos - start;
    ops.push_back(op);
    if (op.len == 0) break;
    pos += op.len;
    if (op.ends || pos >= 4096) break;
  }
  if (ops.empty()) return nullptr;  // first instruction straddles the page boundary
  const size_t elided = DeadFlagPass(ops.data(), ops.size(), mode);
  std::unique_ptr<Block> b = Block::Make(ops.data(), static_cast<uint32_t>(ops.size()));
  b->phys = phys;
  b->mode_key = mode;
  b->flags_elided = elided > 0;
  stat_flags_elided += elided;
  // The bytes the block depends on: up to the end of its last op (an op of length 0, one the
  // decoder refused, depends on the 15 bytes it looked at).
  b->bytes = std::min<unsigned>(4096 - start, pos - start + (ops.back().len == 0 ? 15 : 0));
  Block* raw = b.get();
  const uint64_t key = BlockKey(phys, mode);
  page_blocks[page].push_back(key);
  mem.MarkCode(page);
  auto it = blocks.find(key);
  if (it != blocks.end()) retired_blocks.push_back(std::move(it->second));
  blocks[key] = std::move(b);
  jump_cache[JumpCacheIndex(phys)] = JumpCacheEntry{key, raw};
  ++stat_blocks_decoded;
  return raw;
}

}  // namespace vmrr
