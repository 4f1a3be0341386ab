// The x86-64 register model a gdb remote stub serves for a vmrr guest CPU: the target
// description (gdb manual, "Target Descriptions"), the register table derived from it (the
// remote register numbers of 'p'/'P' and the byte layout of 'g'/'G'), the encoding of a
// CpuState into those packets, and the qXfer:features:read transfer of the description.
// The request parser reads outside bytes: it never throws and allocates at most the annex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "hv-hooks/cpu/cpu.h"

namespace vmrr::analysis {

// The x87 and SSE registers in gdb's layout (FpuViewOf builds it from a CpuState). The
// defaults are the state after FNINIT and a fresh MXCSR.
struct FpuView {
  // ST(0)..ST(7) in stack order (ST(i) is physical register (TOP + i) mod 8), each in the
  // 80-bit extended format as stored in memory: significand bytes 0-7, sign and exponent 8-9.
  std::array<std::array<uint8_t, 10>, 8> st{};
  uint16_t fctrl = 0x37f;
  uint16_t fstat = 0;       // with TOP in bits 11-13
  uint16_t ftag = 0xffff;   // the full tag word (two bits per register; 11 = empty), as FSAVE
  uint16_t fiseg = 0;       // last instruction's CS selector
  uint32_t fioff = 0;       // last instruction's offset
  uint16_t foseg = 0;       // last operand's DS selector
  uint32_t fooff = 0;       // last operand's offset
  uint16_t fop = 0;         // last opcode (11 bits)
  std::array<std::array<uint8_t, 16>, 16> xmm{};  // little-endian, byte 0 is bits 0-7
  uint32_t mxcsr = 0x1f80;
};

// One register as gdb sees it over the wire. regnum is the remote register number (the
// description's order, which 'p'/'P' use); offset is its byte offset in the 'g' reply. These
// are not gdb's internal register numbers, which differ from fs_base on.
// The x87/SSE part of `cpu` as gdb wants it: ST(i) in stack order, the full tag word
// (00 valid, 01 zero, 10 special, 11 empty) from the CPU's abridged one.
FpuView FpuViewOf(const CpuState& cpu);

struct GdbRegister {
  std::string_view name;
  unsigned bitsize;
  unsigned regnum;
  unsigned offset;
};

// Every register of TargetXml() in regnum order (regnum == index).
std::span<const GdbRegister> GdbRegisters();
// The register called `name`, or null.
const GdbRegister* FindGdbRegister(std::string_view name);
// The 'g' reply's size in bytes (the sum of all bitsizes / 8).
size_t GPacketBytes();

// The target description: architecture i386:x86-64; features org.gnu.gdb.i386.core,
// org.gnu.gdb.i386.sse, org.gnu.gdb.i386.segments (fs_base, gs_base) and
// org.vmrr.gdb.i386.system (k_gs_base, cr0, cr2, cr3, cr4, cr8, efer; register group
// "system", so `info registers system` lists them). One self-contained document: the stub
// serves it as the annex "target.xml", with no xi:include.
std::string_view TargetXml();

// The 'g' reply: lowercase hex of every register in regnum order, each little-endian in its
// bitsize.
std::string EncodeGPacket(const CpuState& cpu, const FpuView& fpu = {});
// The 'p' reply for one register; nullopt for a regnum the description does not have.
std::optional<std::string> EncodeRegister(const CpuState& cpu, unsigned regnum, const FpuView& fpu = {});

// The body of a qXfer read reply for `document` ("Remote Protocol", "General Query Packets"):
// "m" + the chunk at [offset, offset + length) when more follows it, "l" + the chunk when it
// reaches the end; an offset at or past the end gives "l". The caller escapes it with
// EncodeGdbPacket. A request for zero bytes before the end would give "m" with no data, on
// which gdb would ask again forever: ParseXferFeaturesRead refuses length 0.
std::string XferRead(std::string_view document, uint64_t offset, uint64_t length);

struct XferRequest {
  std::string annex;
  uint64_t offset;
  uint64_t length;
  bool operator==(const XferRequest&) const = default;
};
// "qXfer:features:read:ANNEX:OFFSET,LENGTH" (OFFSET and LENGTH hex, up to 64 bits). Refuses
// anything else: another object or operation, an empty annex or one containing ':', a length
// of 0, missing or extra fields.
std::optional<XferRequest> ParseXferFeaturesRead(std::string_view packet);

}  // namespace vmrr::analysis
