// CpuCore: the CPU's internal state and the helpers every instruction family shares
// (operand access, segmentation, paging/TLB, flags, faults). Handlers in alu.cc, muldiv.cc,
// ... all have the signature `void Handler(CpuCore&, const Op&)` and are reached through the
// one dispatch table in decode.cc.
#pragma once

#include <cassert>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "hv-hooks/cpu/cpu.h"

namespace vmrr {

struct CpuCore;
struct Op;
using Handler = void (*)(CpuCore&, const Op&);

enum OperandKind : uint8_t { kOpNone, kOpReg, kOpMem, kOpImm, kOpSreg, kOpCr, kOpDr, kOpPtr,
                           kOpMmx, kOpXmm };
inline constexpr uint8_t kNoReg = 0xff;
inline constexpr uint8_t kRipReg = 0xfe;

struct Operand {
  uint8_t kind = kOpNone;
  uint8_t size = 0;   // bytes
  uint8_t reg = 0;    // GPR/sreg/cr/dr index
  bool high8 = false; // AH/CH/DH/BH
  uint8_t seg = kDs;  // memory: effective segment
  uint8_t base = kNoReg, index = kNoReg, scale = 0;
  uint64_t disp = 0;  // memory displacement, immediate, or far pointer offset
  uint16_t sel = 0;   // far pointer selector
};

// Execution modes, derived from CR0/EFER/CS/RFLAGS; part of the block-cache key.
enum CpuMode : uint8_t { kModeReal, kModeProt16, kModeProt32, kModeCompat16, kModeCompat32,
                         kModeLong64, kModeV86 };

struct Op {
  Handler fn = nullptr;
  uint16_t mnemonic = 0;
  uint8_t len = 0;
  uint8_t osize = 0;   // operand size in bytes
  uint8_t asize = 0;   // address size in bytes
  uint8_t rep = 0;     // 0 none, 1 REP/REPE, 2 REPNE
  uint8_t cond = 0;    // condition code for Jcc/SETcc/CMOVcc/LOOPcc
  uint8_t nops = 0;
  uint8_t opcode = 0;
  uint8_t map = 0;
  bool lock = false;
  bool ends = false;  // the block ends after this op
  bool far_branch = false;  // far JMP/CALL through a memory operand or pointer
  // Its handlers read neither RIP nor next_rip and cannot fault or end the block (register
  // ALU/INC/DEC/MOV, LEA without RIP-relative addressing): the run loop stores neither for it.
  bool rip_free = false;
  uint8_t seg_ovr = 0xff;  // explicit segment prefix (string instructions), 0xff = none
  uint32_t offset = 0;  // from the block start
  uint64_t aux = 0;     // handler-specific (e.g. an exception vector for a #UD/#NM op)
  Handler exact = nullptr;  // set when fn skips dead flags: the handler that computes them
  Operand o[3];
};

// A decoded block: its header and its ops in one allocation (Block::Make), so that the run
// loop's one cache miss on a block brings its first op in with it.
struct alignas(alignof(Op)) Block {
  uint64_t phys = 0;
  uint32_t mode_key = 0;
  uint32_t bytes = 0;  // length of its code from phys (within one page)
  uint32_t nops = 0;
  bool flags_elided = false;  // some op runs its flag-free variant (DeadFlagPass)
  Op* ops() { return reinterpret_cast<Op*>(this + 1); }
  const Op* ops() const { return reinterpret_cast<const Op*>(this + 1); }
  static std::unique_ptr<Block> Make(const Op* ops, uint32_t nops) {
    static_assert(std::is_trivially_copyable_v<Op> && std::is_trivially_destructible_v<Op>);
    void* raw = ::operator new(sizeof(Block) + sizeof(Op) * nops);
    std::unique_ptr<Block> b(new (raw) Block);
    b->nops = nops;
    std::memcpy(static_cast<void*>(b->ops()), ops, sizeof(Op) * nops);
    return b;
  }
  static void operator delete(void* p) { ::operator delete(p); }
};
static_assert(sizeof(Block) % alignof(Op) == 0);

// Memory access kinds (for paging rights and #PF error codes).
enum Access : uint8_t { kRead = 0, kWrite = 1, kExec = 2 };

inline constexpr uint64_t kNoTlbPage = ~uint64_t{0};
struct TlbEntry {
  uint64_t vpage = kNoTlbPage;
  uint64_t ppage = 0;
  uint8_t* host = nullptr;  // RAM page, or nullptr for MMIO
  uint8_t rights = 0;       // kRight* bits
};
inline constexpr uint8_t kRightR_U = 1, kRightW_S = 2, kRightW_U = 4, kRightX_S = 8,
                         kRightX_U = 16, kRightR_S = 32, kRightsAll = 63;
inline constexpr unsigned kTlbSize = 1024;
// Direct-mapped, indexed by a hash of the page number so that buffers a power of two apart
// (a copy from 2 MiB to 4 MiB) do not evict each other on every access.
inline unsigned TlbIndex(uint64_t vpage) {
  return static_cast<unsigned>((vpage ^ (vpage >> 10) ^ (vpage >> 20)) % kTlbSize);
}
// The decoded-block jump cache: direct-mapped by the block's physical address.
// Each entry holds its block's key (BlockKey), so that a hit is decided without touching the
// block.
inline constexpr unsigned kJumpCacheSize = 16384;
inline unsigned JumpCacheIndex(uint64_t phys) {
  return static_cast<unsigned>((phys ^ (phys >> 12)) % kJumpCacheSize);
}
inline uint64_t BlockKey(uint64_t phys, CpuMode mode) { return (phys << 4) | mode; }
struct JumpCacheEntry {
  uint64_t key = ~uint64_t{0};
  Block* block = nullptr;
};

// A 64-bit address whose bits 63..47 are all equal (48-bit linear addresses).
inline bool IsCanonical(uint64_t a) {
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
}

// Little-endian loads and stores of 1..8 bytes: the usual sizes as single moves (a memcpy of
// a size only known at run time is a call to memmove: 5.6% of a Linux boot's profile).
inline uint64_t LoadN(const uint8_t* p, unsigned size) {
  switch (size) {
    case 1:
      return *p;
    case 2: {
      uint16_t x;
      std::memcpy(&x, p, 2);
      return x;
    }
    case 4: {
      uint32_t x;
      std::memcpy(&x, p, 4);
      return x;
    }
    case 8: {
      uint64_t x;
      std::memcpy(&x, p, 8);
      return x;
    }
    default: {
      uint64_t x = 0;
      std::memcpy(&x, p, size);
      return x;
    }
  }
}
inline void StoreN(uint8_t* p, unsigned size, uint64_t v) {
  switch (size) {
    case 1:
      *p = static_cast<uint8_t>(v);
      return;
    case 2: {
      const uint16_t x = static_cast<uint16_t>(v);
      std::memcpy(p, &x, 2);
      return;
    }
    case 4: {
      const uint32_t x = static_cast<uint32_t>(v);
      std::memcpy(p, &x, 4);
      return;
    }
    case 8:
      std::memcpy(p, &v, 8);
      return;
    default:
      std::memcpy(p, &v, size);
  }
}

struct CpuCore final : public CodeWriteObserver {
  explicit CpuCore(CpuPlatform& platform);
  ~CpuCore() override;

  // ---- state ----
  CpuState s;
  CpuPlatform& platform;
  GuestMemory& mem;
  uint64_t icount = 0;
  uint64_t target = 0;
  bool intr = false;
  bool nmi_pending = false;
  bool exit_requested = false;
  std::atomic<bool> async_exit{false};  // Cpu::RequestExitAsync
  std::set<uint64_t> breakpoints;
  // A filter over the pages holding breakpoints (one bit per hash of the linear page number),
  // so that a block on a page without one costs one bit test, not a set lookup.
  uint64_t bp_pages[64] = {};
  static unsigned BpPageBit(uint64_t lin) {
    const uint64_t p = lin >> 12;
    return static_cast<unsigned>((p ^ (p >> 12) ^ (p >> 24)) & 4095);
  }
  bool BpPageMaybe(uint64_t lin) const {
    const unsigned b = BpPageBit(lin);
    return (bp_pages[b >> 6] >> (b & 63)) & 1;
  }
  void RebuildBpPages() {
    for (auto& w : bp_pages) w = 0;
    for (uint64_t lin : breakpoints) {
      const unsigned b = BpPageBit(lin);
      bp_pages[b >> 6] |= uint64_t{1} << (b & 63);
    }
  }
  // Debugger watchpoints (Cpu::SetWatchpoints) and the inclusive linear page ranges they cover.
  // TLB entries of watched pages carry host == nullptr, so every fast path (which tests host)
  // falls back to ReadLin/WriteLin's slow path, where CheckWatch looks.
  std::vector<Watchpoint> watchpoints;
  std::vector<std::pair<uint64_t, uint64_t>> watch_pages;
  bool watch_stop = false;  // a watched access happened in the current instruction
  uint64_t last_delivery_icount = ~uint64_t{0};  // Cpu::last_delivery_icount
  WatchHit watch_hit;
  bool IsWatchedPage(uint64_t vpage) const {
    for (const auto& [first, last] : watch_pages)
      if (vpage >= first && vpage <= last) return true;
    return false;
  }
  // The host pointer a TLB entry for vpage -> ppage carries: nullptr for MMIO and for pages a
  // watchpoint covers.
  uint8_t* TlbHost(uint64_t vpage, uint64_t ppage) {
    if (__builtin_expect(!watch_pages.empty(), 0) && IsWatchedPage(vpage)) return nullptr;
    return mem.Span(ppage, kGuestPageSize);
  }
  void CheckWatch(uint64_t lin, unsigned size, uint8_t kind);

  // per-instruction scratch
  uint64_t next_rip = 0;
  // Set by handlers to end the current block after this instruction (control transfer,
  // mode change, I/O, STI, self-modifying store, REP interruption).
  bool end_block = false;
  bool fault = false;
  uint8_t fault_vector = 0;
  bool fault_has_error = false;
  uint32_t fault_error = 0;
  bool halted_now = false;
  // Exceptions and interrupts delivered since the last retired instruction. A guest whose
  // handler faults before retiring anything (a handler beyond its segment limit, a #PF
  // handler on a missing page) would loop forever without icount moving, and Run would never
  // return; after kMaxDeliveriesWithoutRetire the CPU shuts down as on a triple fault.
  // Counted deterministically and saved with the state.
  uint32_t deliveries_without_retire = 0;
  static constexpr uint32_t kMaxDeliveriesWithoutRetire = 1u << 16;

  CpuMode mode = kModeReal;
  uint64_t ip_mask = 0xffff;  // of RIP in this mode (UpdateMode)

  TlbEntry tlb[kTlbSize];
  // The code page of the last block fetched in 64-bit mode (cleared with the TLB and on mode
  // changes): consecutive blocks on one page skip segmentation and the TLB lookup.
  uint64_t fetch_vpage = ~uint64_t{0};
  uint64_t fetch_ppage = 0;
  uint8_t fetch_cpl = 0;

  // ---- decoded blocks ----
  std::unordered_map<uint64_t, std::unique_ptr<Block>> blocks;  // key: phys<<4 | mode
  std::unordered_map<uint64_t, std::vector<uint64_t>> page_blocks;  // page -> keys
  std::vector<std::unique_ptr<Block>> retired_blocks;  // freed at the next block boundary
  JumpCacheEntry jump_cache[kJumpCacheSize];
  Block* current_block = nullptr;
  bool host_mxcsr_default = false;  // HostMxcsrIsDefault() at the start of this Run
  uint64_t stat_blocks_decoded = 0;
  uint64_t stat_flags_elided = 0;  // ops decoded with their flag-free variant
  uint64_t stat_invalidations = 0;
  // Block-length pressure per code page (hashed, saturating at 6): raised by two when writes
  // invalidate decoded blocks on the page or a block there is cut short by an MMIO access
  // (NoteBlockCut), lowered by one at every block decoded there; reset by FlushBlocks.
  // DecodeBlock decodes 64 >> pressure instructions at most, so code that rewrites its own
  // page at every instruction, or straight-line code whose every instruction ends its block
  // (a fuzzer's, or real-mode code running over zeros with "add [bx+si], al"), decodes one
  // or two instructions per block instead of 64 for each one it runs. Block length never
  // changes what the guest sees (Run cuts blocks at any icount already), only speed; not
  // saved.
  static constexpr unsigned kSmcSlots = 256;
  uint8_t smc_pressure[kSmcSlots] = {};
  // The current block is being cut short by an MMIO access: raise its page's pressure.
  // Called on those cold paths only, never per instruction.
  void NoteBlockCut() {
    if (!current_block) return;
    uint8_t& p = smc_pressure[(current_block->phys >> kGuestPageShift) % kSmcSlots];
    p = static_cast<uint8_t>(p + 2 > 6 ? 6 : p + 2);
  }
  std::vector<Op> decode_scratch;  // DecodeBlock's work vector (keeps its capacity)
  // Instructions Run may still execute when it asks DecodeBlock for a block: no block is
  // decoded much longer than that (a run of short slices, each after a load that dropped
  // every block, would otherwise decode 64 instructions to execute a few).
  uint64_t decode_remaining = ~uint64_t{0};
  void* decoders = nullptr;  // ZydisDecoder[7], owned

  // ---- lifecycle ----
  void Reset();
  void UpdateMode();
  void FlushTlb(bool include_global);
  void FlushBlocks();
  void OnCodeWrite(uint64_t gpa, uint64_t len) override;
  RunResult Run(uint64_t target_icount);
  // The jump cache's hit inline (once per block run), the block map behind it.
  Block* LookupBlock(uint64_t phys) {
    JumpCacheEntry& slot = jump_cache[JumpCacheIndex(phys)];
    if (slot.key == BlockKey(phys, mode)) [[likely]] return slot.block;
    return LookupBlockSlow(phys, slot);
  }
  Block* LookupBlockSlow(uint64_t phys, JumpCacheEntry& slot);
  Block* DecodeBlock(uint64_t phys);
  bool DecodeOne(Op* op, const uint8_t* bytes, unsigned avail, int* status);
  bool DecodeAt(uint64_t rip, Op* op);  // fetch (may fault) + decode one
  bool CheckEvents();  // delivers a pending interrupt; true if one was delivered
  uint64_t OpsBeforeBreakpoint(const Op* ops, uint64_t n, uint64_t ip_mask) const;

  // ---- faults ----
  void Fault(uint8_t vector, uint32_t error = 0, bool has_error = true);
  void FaultNoErr(uint8_t vector) { Fault(vector, 0, false); }
  void Gp(uint32_t e = 0) { Fault(13, e); }
  void Ud() { FaultNoErr(6); }
  void Deliver(uint8_t vector, bool has_error, uint32_t error, bool software,
               uint64_t return_rip, bool external = false);
  void DeliverPendingFault();
  void RaiseDeliveryFault();

  // ---- registers ----
  uint64_t GetReg(uint8_t r, unsigned size, bool high8 = false) const {
    uint64_t v = s.gpr[r];
    if (high8) return (v >> 8) & 0xff;
    switch (size) {
      case 1: return v & 0xff;
      case 2: return v & 0xffff;
      case 4: return v & 0xffffffffu;
      default: return v;
    }
  }
  void SetReg(uint8_t r, unsigned size, uint64_t v, bool high8 = false) {
    uint64_t& d = s.gpr[r];
    if (high8) { d = (d & ~uint64_t{0xff00}) | ((v & 0xff) << 8); return; }
    switch (size) {
      case 1: d = (d & ~uint64_t{0xff}) | (v & 0xff); break;
      case 2: d = (d & ~uint64_t{0xffff}) | (v & 0xffff); break;
      case 4: d = v & 0xffffffffu; break;
      default: d = v;
    }
  }
  bool long64() const { return mode == kModeLong64; }
  bool protected_mode() const { return (s.cr0 & 1) != 0; }
  bool paging() const { return (s.cr0 & 0x80000000u) != 0; }
  unsigned stack_size() const {
    if (long64()) return 8;
    return (s.seg[kSs].attr & kSegAttrDb) ? 4 : 2;
  }
  uint64_t AddrMask(unsigned asize) const {
    return asize == 8 ? ~uint64_t{0} : asize == 4 ? 0xffffffffu : 0xffffu;
  }

  // ---- memory ----
  // Linear address of seg:offset with segment checks (limit, type, canonical). false = fault.
  bool Linear(uint8_t seg, uint64_t offset, unsigned size, Access acc, uint64_t* lin);
  uint64_t EffectiveAddress(const Op& op, const Operand& o) const {
    uint64_t a = o.disp;
    if (o.base == kRipReg) a += next_rip;
    else if (o.base != kNoReg) a += s.gpr[o.base];
    if (o.index != kNoReg) a += s.gpr[o.index] * o.scale;
    return a & AddrMask(op.asize);
  }
  // Page walk; on failure raises #PF (unless probe) and returns false.
  bool Translate(uint64_t lin, Access acc, bool user, TlbEntry** out, bool probe = false);
  bool WalkNoSideEffects(uint64_t lin, uint64_t* gpa) const;
  bool ReadLin(uint64_t lin, unsigned size, uint64_t* v, Access acc = kRead);
  bool WriteLin(uint64_t lin, unsigned size, uint64_t v);
  // Supervisor-implicit accesses (descriptor tables, TSS, IDT): ignore CPL for U/S.
  bool ReadSys(uint64_t lin, unsigned size, uint64_t* v);
  bool WriteSys(uint64_t lin, unsigned size, uint64_t v);
  bool ReadPhys(uint64_t gpa, unsigned size, uint64_t* v);
  bool WritePhys(uint64_t gpa, unsigned size, uint64_t v);
  // The TLB entry serving a 64-bit mode access of seg:off that stays within one page, when it
  // is a hit with the rights the access needs (R or W, at the CPL) on RAM that no watchpoint
  // covers; else nullptr, and the caller takes the generic path (Linear, then ReadLin or
  // WriteLin), which segments, walks, sets A/D, faults, watches and reaches MMIO. A TLB entry
  // grants W only once the walk has set the page's D bit, so a hit has nothing left to set.
  // sys_access is never set around a ReadSeg/WriteSeg (ReadSys/WriteSys call ReadLin).
  TlbEntry* FastEntry(uint8_t seg, uint64_t off, unsigned size, uint8_t need_s, uint8_t need_u,
                      uint64_t* lin) {
    if (mode != kModeLong64) return nullptr;
    const uint64_t a = (seg == kFs || seg == kGs) ? s.seg[seg].base + off : off;
    if ((a & 0xfff) + size > 4096 || !IsCanonical(a)) return nullptr;
    TlbEntry& e = tlb[TlbIndex(a >> 12)];
    if (e.vpage != (a >> 12) || !(e.rights & (s.cpl == 3 ? need_u : need_s)) || !e.host)
      return nullptr;
    *lin = a;
    return &e;
  }
  [[gnu::always_inline]] bool ReadSeg(uint8_t seg, uint64_t off, unsigned size, uint64_t* v, Access acc = kRead) {
    uint64_t lin;
    if (acc == kRead) {
      if (const TlbEntry* e = FastEntry(seg, off, size, kRightR_S, kRightR_U, &lin)) [[likely]] {
        *v = LoadN(e->host + (lin & 0xfff), size);
        return true;
      }
    }
    return Linear(seg, off, size, acc, &lin) && ReadLin(lin, size, v, acc);
  }
  [[gnu::always_inline]] bool WriteSeg(uint8_t seg, uint64_t off, unsigned size, uint64_t v) {
    uint64_t lin;
    if (const TlbEntry* e = FastEntry(seg, off, size, kRightW_S, kRightW_U, &lin)) [[likely]] {
      StoreN(e->host + (lin & 0xfff), size, v);
      mem.NoteWrite(e->ppage + (lin & 0xfff), size);
      return true;
    }
    return Linear(seg, off, size, kWrite, &lin) && WriteLin(lin, size, v);
  }
  // Checks that a write to seg:off would succeed (for read-modify-write ordering).
  bool ProbeWrite(uint8_t seg, uint64_t off, unsigned size);
  bool user_access = false;  // implicit supervisor access in progress => false
  bool sys_access = false;

  // ---- operands ----
  bool Read(const Op& op, const Operand& o, uint64_t* v);
  bool Write(const Op& op, const Operand& o, uint64_t v);
  bool Push(uint64_t v, unsigned size);
  bool Pop(uint64_t* v, unsigned size);
  bool PopPeek(uint64_t* v, unsigned size, uint64_t at_offset);  // reads without moving RSP

  // ---- flags ----
  uint64_t& fl() { return s.rflags; }
  // Condition code cc (the low nibble of Jcc/SETcc/CMOVcc) on RFLAGS.
  bool Cond(uint8_t cc) const {
    const uint64_t f = s.rflags;
    bool r;
    switch (cc >> 1) {
      case 0: r = f & kFlagOf; break;
      case 1: r = f & kFlagCf; break;
      case 2: r = f & kFlagZf; break;
      case 3: r = f & (kFlagCf | kFlagZf); break;
      case 4: r = f & kFlagSf; break;
      case 5: r = f & kFlagPf; break;
      case 6: r = ((f & kFlagSf) != 0) != ((f & kFlagOf) != 0); break;
      default: r = (f & kFlagZf) || (((f & kFlagSf) != 0) != ((f & kFlagOf) != 0)); break;
    }
    return (cc & 1) ? !r : r;
  }

  // ---- segments & system ----
  bool LoadSegment(uint8_t seg, uint16_t sel);   // MOV/POP sreg semantics
  void LoadSegmentReal(uint8_t seg, uint16_t sel);
  // false: either a fault is pending (fault == true) or the selector is outside its table.
  bool ReadDescriptor(uint16_t sel, uint64_t* desc);
  bool LoadCodeSegmentFar(uint16_t sel, uint64_t offset, bool is_call, unsigned osize,
                          uint64_t return_rip);
  static Segment DescToSegment(uint16_t sel, uint64_t desc);
  // Far RET and IRET to an outer or equal level (control.cc): the code segment and, when the
  // stack changes, the stack segment returned to, checked as the SDM says. false = fault.
  bool CheckReturnCodeSegment(uint16_t sel, Segment* cs);
  bool CheckReturnStackSegment(uint16_t ssel, unsigned rpl, bool to_64, Segment* ss);
  // After a return to an outer level: data segments the new CPL may not use become null.
  void NullInaccessibleDataSegments();
  bool SetCr(unsigned n, uint64_t v);
  bool ReadMsr(uint32_t idx, uint64_t* v);
  bool WriteMsr(uint32_t idx, uint64_t v);
  void SetRflags(uint64_t v, uint64_t mask);
  bool IoAllowed(uint16_t port, unsigned size);
  void Cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4]) const;
};

// Flag computation helpers.
inline uint64_t SizeMask(unsigned size) {
  return size == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
}
inline uint64_t SignBit(unsigned size) { return uint64_t{1} << (8 * size - 1); }
inline int64_t SignExtend(uint64_t v, unsigned size) {
  switch (size) {
    case 1: return static_cast<int8_t>(v);
    case 2: return static_cast<int16_t>(v);
    case 4: return static_cast<int32_t>(v);
    default: return static_cast<int64_t>(v);
  }
}
inline bool Parity(uint64_t v) { return !__builtin_parity(static_cast<unsigned>(v & 0xff)); }

// MOV to/from control and debug registers (system.cc); decode.cc picks them for MOV forms
// with a CR/DR operand.
Handler MovCrHandler();
Handler MovDrHandler();
// A specialised handler for hot register-only forms (fastpath.cc), or nullptr.
Handler FastHandlerFor(const Op& op, CpuMode mode);
size_t DeadFlagPass(Op* ops, size_t n, CpuMode mode);  // how many ops' flags it elided

// The dispatch table lookup for a decoded mnemonic (decode.cc).
Handler HandlerFor(unsigned mnemonic);

// Handler registration: each family file defines a registration function filling its slots.
void RegisterAlu(Handler* table);
void RegisterMulDiv(Handler* table);
void RegisterBitOps(Handler* table);
void RegisterString(Handler* table);
void RegisterControl(Handler* table);
void RegisterDataMove(Handler* table);
void RegisterSystem(Handler* table);
void RegisterInterrupts(Handler* table);
void RegisterFpu(Handler* table);
void RegisterSse(Handler* table);
// The host MXCSR's control bits are the process default 1F80H (sse.cc; read at each Run).
bool HostMxcsrIsDefault();
void RegisterX87(Handler* table);  // x87.cc: every x87 mnemonic, decoded from Op::aux = FOP
// The SSE2 CMPSD and MOVSD handlers (sse.cc); the table slots for CMPSD and MOVSD hold the
// string instructions.
Handler SseCmpsdHandler();
Handler SseMovsdHandler();

// x87/MMX/SSE/XSAVE availability (fpu.cc), as the SDM's exception tables give it: each raises
// the exception and returns false, or returns true. Every x87, MMX, SSE and XSAVE handler
// calls the one for its class before anything else.
//   CheckFpuAvailable         x87 non-waiting (FNINIT, FNSTSW...): CR0.EM or TS -> #NM
//   CheckFpuAvailableWaiting  other x87: as above, then a pending unmasked x87 exception -> #MF
//   CheckWaitAvailable        WAIT/FWAIT: CR0.TS and MP -> #NM, then pending -> #MF
//   CheckMmxAvailable         MMX: CR0.EM -> #UD, CR0.TS -> #NM, pending x87 -> #MF
//   CheckSseAvailable         SSE-SSSE3: CR0.EM or !CR4.OSFXSR -> #UD, CR0.TS -> #NM
//   CheckFxsrAvailable        FXSAVE/FXRSTOR: CR0.EM or TS -> #NM
//   CheckXsaveAvailable       XSAVE family: !CR4.OSXSAVE -> #UD, CR0.TS -> #NM
bool CheckFpuAvailable(CpuCore& c);
bool CheckFpuAvailableWaiting(CpuCore& c);
bool CheckWaitAvailable(CpuCore& c);
bool CheckMmxAvailable(CpuCore& c);
bool CheckSseAvailableSlow(CpuCore& c);
// SSE usable: CR0.EM and CR0.TS clear and CR4.OSFXSR set (the common case inline), else #UD
// or #NM raised by the slow path.
inline bool CheckSseAvailable(CpuCore& c) {
  if (__builtin_expect((c.s.cr0 & 0xc) == 0 && (c.s.cr4 & (1u << 9)), 1)) return true;
  return CheckSseAvailableSlow(c);
}
bool CheckFxsrAvailable(CpuCore& c);
bool CheckXsaveAvailable(CpuCore& c);
// The x87 environment FNINIT gives (FCW 037FH, FSW 0, all tags empty, pointers and opcode 0);
// the data registers are not touched.
void FpuInit(CpuState& s);
// The MMX side effects (fpu.cc): every MMX instruction but EMMS sets TOP = 0 and all tags
// valid; an MMX register write sets the register's sign/exponent to FFFFH.
void MmxTransition(CpuState& s);
void SetMmx(CpuState& s, unsigned r, uint64_t v);
// FCW as loaded from memory (FLDCW, FXRSTOR, and FLDENV/FRSTOR): bits 7, 13-15 clear, bit 6 set.
uint16_t FcwFromMemory(uint16_t v);

}  // namespace vmrr
