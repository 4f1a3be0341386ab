// Capstone disassembly of the instruction at CS:RIP (one address rule for every caller).
#include "replayer/disassemble.h"

#include <capstone/capstone.h>

#include "hv-hooks/cpu/cpu.h"

namespace vmrr {

Disassembly DisassembleAtRip(Machine& m, uint64_t back) {
  const CpuState& s = m.cpu().state();
  const Segment& cs = s.seg[kCs];
  const bool long64 = (s.efer & (1u << 10)) && (cs.attr & kSegAttrL);  // EFER.LMA and CS.L
  const cs_mode mode = long64 ? CS_MODE_64 : (cs.attr & kSegAttrDb) ? CS_MODE_32 : CS_MODE_16;
  const uint64_t mask = long64 ? ~uint64_t{0} : 0xffffffffu;
  Disassembly d;
  d.linear = ((long64 ? 0 : cs.base) + s.rip - back) & mask;
  uint8_t bytes[15];
  size_t n = 0;
  for (; n < sizeof bytes; ++n) {
    uint64_t gpa;
    if (!m.cpu().TranslateLinear((d.linear + n) & mask, &gpa) || !m.memory().Read(gpa, &bytes[n], 1)) {
      break;
    }
  }
  d.bytes.assign(bytes, bytes + n);
  csh handle;
  if (n == 0 || cs_open(CS_ARCH_X86, mode, &handle) != CS_ERR_OK) return d;
  cs_insn* insn = nullptr;
  const size_t count = cs_disasm(handle, bytes, n, d.linear, 1, &insn);
  if (count == 1) {
    d.decoded = true;
    d.text = std::string(insn[0].mnemonic) + (insn[0].op_str[0] ? " " : "") + insn[0].op_str;
    d.bytes.assign(insn[0].bytes, insn[0].bytes + insn[0].size);
  }
  cs_free(insn, count);
  cs_close(&handle);
  return d;
}

}  // namespace vmrr
