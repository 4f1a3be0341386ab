// State coverage of the software CPU (see state_coverage.h): every CpuState field and the
// CPU's other live state (icount, INTR line, pending NMI, the count of deliveries without a
// retired instruction) must reach SaveState's bytes, and a CPU loaded from them must run the
// same code the same way, instruction by instruction. Also the TLB case of issue 10.
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "tests/unit/cpu/flat_machine.h"
#include "tests/unit/machine/state_coverage.h"

namespace vmrr::coverage {
namespace {

using namespace vmrr::testing;

constexpr uint64_t kRam = 1 << 20;

// loop: inc rax; push rax; pop rbx; rdtscp; add [0x8000], rbx; jmp loop
const std::vector<uint8_t> kLoop = {0x48, 0xff, 0xc0, 0x50, 0x5b, 0x0f, 0x01, 0xf9, 0x48,
                                    0x01, 0x1c, 0x25, 0x00, 0x80, 0x00, 0x00, 0xeb, 0xee};

struct CpuSnapshot {
  std::vector<uint8_t> cpu;
  std::vector<uint8_t> memory;
};

struct CpuRig {
  TestPlatform platform{kRam};
  Cpu cpu{platform};
  GuestMemory& mem() { return platform.memory(); }

  CpuRig() {
    CpuState s = MakeFlatState(FlatMode::kLong64, mem());
    mem().Write(kCodeBase, kLoop.data(), kLoop.size());
    platform.tsc = 1000;
    cpu.SetState(s);
  }
  void Edit(const std::function<void(CpuState&)>& f) {
    CpuState s = cpu.state();
    f(s);
    cpu.SetState(s);
  }
  std::vector<uint8_t> Save() { return cpu.SaveBytes(); }
  CpuSnapshot Snap() {
    return {cpu.SaveBytes(), std::vector<uint8_t>(mem().data(), mem().data() + mem().size())};
  }
  void Restore(const CpuSnapshot& s) {
    mem().Write(0, s.memory.data(), s.memory.size());
    cpu.LoadBytes(s.cpu);
  }

  static void State(Trace& t, const std::string& at, const CpuState& s) {
    for (int i = 0; i < 16; ++i) t(at + " gpr " + std::to_string(i), s.gpr[i]);
    t(at + " rip", s.rip);
    t(at + " rflags", s.rflags);
    auto seg = [&](const std::string& n, const Segment& g) {
      t(at + " " + n + " selector", g.selector);
      t(at + " " + n + " attr", g.attr);
      t(at + " " + n + " limit", g.limit);
      t(at + " " + n + " base", g.base);
    };
    for (int i = 0; i < 6; ++i) seg("seg " + std::to_string(i), s.seg[i]);
    seg("ldtr", s.ldtr);
    seg("tr", s.tr);
    t(at + " gdtr base", s.gdtr.base);
    t(at + " gdtr limit", s.gdtr.limit);
    t(at + " idtr base", s.idtr.base);
    t(at + " idtr limit", s.idtr.limit);
    const uint64_t crs[] = {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.xcr0};
    for (int i = 0; i < 6; ++i) t(at + " cr/xcr " + std::to_string(i), crs[i]);
    for (int i = 0; i < 8; ++i) t(at + " dr " + std::to_string(i), s.dr[i]);
    const uint64_t msrs[] = {s.efer, s.star, s.lstar, s.cstar, s.sfmask, s.kernel_gs_base,
                             s.sysenter_cs, s.sysenter_esp, s.sysenter_eip, s.tsc_offset,
                             s.tsc_aux, s.apic_base, s.pat, s.misc_enable, s.mtrr_def_type};
    for (int i = 0; i < 15; ++i) t(at + " msr " + std::to_string(i), msrs[i]);
    for (int i = 0; i < 8; ++i) {
      t(at + " st " + std::to_string(i) + " mant", s.st[i].mant);
      t(at + " st " + std::to_string(i) + " sign_exp", s.st[i].sign_exp);
    }
    t(at + " fcw", s.fcw);
    t(at + " fsw", s.fsw);
    t(at + " ftw", s.ftw);
    t(at + " fop", s.fop);
    t(at + " fip", s.fip);
    t(at + " fdp", s.fdp);
    t(at + " fcs", s.fcs);
    t(at + " fds", s.fds);
    for (int i = 0; i < 16; ++i) {
      t(at + " xmm " + std::to_string(i) + " lo", s.xmm[i][0]);
      t(at + " xmm " + std::to_string(i) + " hi", s.xmm[i][1]);
    }
    t(at + " mxcsr", s.mxcsr);
    t(at + " cpl", s.cpl);
    t(at + " halted", s.halted);
    t(at + " shutdown", s.shutdown);
    t(at + " interrupt shadow until", s.interrupt_shadow_until);
    t(at + " nmi blocked", s.nmi_blocked);
  }

  // Single steps through the code, the live state after each, then memory and I/O.
  Trace Probe() {
    Trace t;
    platform.acks = 0;
    platform.outs.clear();
    State(t, "as found", cpu.state());
    t("icount", cpu.icount());
    t("intr line", cpu.intr_line());
    t("interrupts accepted", cpu.InterruptsAccepted());
    for (int step = 0; step < 24; ++step) {
      const std::string at = "step " + std::to_string(step);
      if (step == 12) cpu.SetIntrLine(false);
      const RunResult r = cpu.Run(cpu.icount() + 1);
      t(at + " stop", static_cast<uint64_t>(r.reason));
      t(at + " icount", r.icount);
      State(t, at, cpu.state());
      t(at + " acks", platform.acks);
    }
    uint8_t data[kDataSize + kStackSize];
    mem().Read(kDataBase, data, kDataSize);
    mem().Read(kStackBase, data + kDataSize, kStackSize);
    t("data and stack", [&] {
      uint64_t h = 1469598103934665603ull;
      for (uint8_t b : data) h = (h ^ b) * 1099511628211ull;
      return h;
    }());
    t("port writes", platform.outs.size());
    return t;
  }
};

using Edit = std::function<void(CpuState&)>;

Piece<CpuRig> Field(const std::string& name, Edit edit, std::function<void(CpuRig&)> setup = {}) {
  return {"CpuState." + name, std::move(setup), [edit](CpuRig& r) { r.Edit(edit); }};
}

TEST(StateCoverage, CpuStateFields) {
  std::vector<Piece<CpuRig>> p;
  for (int i = 0; i < 16; ++i) {
    p.push_back(Field("gpr[" + std::to_string(i) + "]", [i](CpuState& s) { s.gpr[i] += 0x1111 * (i + 1); }));
  }
  p.push_back(Field("rip", [](CpuState& s) { s.rip += 3; }));
  p.push_back(Field("rflags", [](CpuState& s) { s.rflags |= kFlagCf | kFlagDf; }));
  for (int i = 0; i < 6; ++i) {
    const std::string n = "seg[" + std::to_string(i) + "]";
    p.push_back(Field(n + ".selector", [i](CpuState& s) { s.seg[i].selector ^= 0x3; }));
    p.push_back(Field(n + ".attr", [i](CpuState& s) { s.seg[i].attr ^= 0x1000; }));
    p.push_back(Field(n + ".limit", [i](CpuState& s) { s.seg[i].limit = 0xfffff; }));
    p.push_back(Field(n + ".base", [i](CpuState& s) { s.seg[i].base = 0x10000; }));
  }
  p.push_back(Field("ldtr", [](CpuState& s) { s.ldtr = Segment{0x38, 0x82, 0x3f, 0x5000}; }));
  p.push_back(Field("tr", [](CpuState& s) { s.tr.base = 0xe000; }));
  p.push_back(Field("gdtr.base", [](CpuState& s) { s.gdtr.base = 0x1800; }));
  p.push_back(Field("gdtr.limit", [](CpuState& s) { s.gdtr.limit = 0x3f; }));
  p.push_back(Field("idtr.base", [](CpuState& s) { s.idtr.base = 0x2800; }));
  p.push_back(Field("idtr.limit", [](CpuState& s) { s.idtr.limit = 0x7ff; }));
  p.push_back(Field("cr0", [](CpuState& s) { s.cr0 &= ~uint64_t{0x10000}; }));  // WP
  p.push_back(Field("cr2", [](CpuState& s) { s.cr2 = 0xdead000; }));
  p.push_back(Field("cr3", [](CpuState& s) { s.cr3 = kPml4Base + 0x18; }));  // PCD|PWT bits
  p.push_back(Field("cr4", [](CpuState& s) { s.cr4 |= 0x200; }));  // OSFXSR
  p.push_back(Field("cr8", [](CpuState& s) { s.cr8 = 5; }));
  p.push_back(Field("xcr0", [](CpuState& s) { s.xcr0 = 3; }));
  for (int i : {0, 1, 2, 3, 6, 7}) {
    p.push_back(Field("dr[" + std::to_string(i) + "]", [i](CpuState& s) { s.dr[i] ^= 0x10 << i; }));
  }
  p.push_back(Field("efer", [](CpuState& s) { s.efer |= 0x800; }));  // NXE
  p.push_back(Field("star", [](CpuState& s) { s.star = 0x0023001000000000ull; }));
  p.push_back(Field("lstar", [](CpuState& s) { s.lstar = 0xffffffff81000000ull; }));
  p.push_back(Field("cstar", [](CpuState& s) { s.cstar = 0x1234; }));
  p.push_back(Field("sfmask", [](CpuState& s) { s.sfmask = 0x47700; }));
  p.push_back(Field("kernel_gs_base", [](CpuState& s) { s.kernel_gs_base = 0x5555; }));
  p.push_back(Field("sysenter_cs", [](CpuState& s) { s.sysenter_cs = 0x08; }));
  p.push_back(Field("sysenter_esp", [](CpuState& s) { s.sysenter_esp = 0x9000; }));
  p.push_back(Field("sysenter_eip", [](CpuState& s) { s.sysenter_eip = 0xc000; }));
  p.push_back(Field("tsc_offset", [](CpuState& s) { s.tsc_offset = 77; }));
  p.push_back(Field("tsc_aux", [](CpuState& s) { s.tsc_aux = 3; }));
  p.push_back(Field("apic_base", [](CpuState& s) { s.apic_base = 0xfee00100; }));
  p.push_back(Field("pat", [](CpuState& s) { s.pat = 0x0007010600070106ull; }));
  p.push_back(Field("misc_enable", [](CpuState& s) { s.misc_enable = 1; }));
  p.push_back(Field("mtrr_def_type", [](CpuState& s) { s.mtrr_def_type = 0xc06; }));
  for (int i = 0; i < 8; ++i) {
    const std::string n = "st[" + std::to_string(i) + "]";
    p.push_back(Field(n + ".mant", [i](CpuState& s) { s.st[i].mant ^= 0x8000000000000001ull << i; }));
    p.push_back(Field(n + ".sign_exp", [i](CpuState& s) { s.st[i].sign_exp ^= 0x8000 | i; }));
  }
  p.push_back(Field("fcw", [](CpuState& s) { s.fcw = 0x027f; }));
  p.push_back(Field("fsw", [](CpuState& s) { s.fsw = 0x3800; }));
  p.push_back(Field("ftw", [](CpuState& s) { s.ftw = 0x81; }));
  p.push_back(Field("fop", [](CpuState& s) { s.fop = 0x7ff; }));
  p.push_back(Field("fip", [](CpuState& s) { s.fip = 0xb123; }));
  p.push_back(Field("fdp", [](CpuState& s) { s.fdp = 0x8456; }));
  p.push_back(Field("fcs", [](CpuState& s) { s.fcs = 0x08; }));
  p.push_back(Field("fds", [](CpuState& s) { s.fds = 0x10; }));
  for (int i = 0; i < 16; ++i) {
    const std::string n = "xmm[" + std::to_string(i) + "]";
    p.push_back(Field(n + "[0]", [i](CpuState& s) { s.xmm[i][0] = 0x1000 + i; }));
    p.push_back(Field(n + "[1]", [i](CpuState& s) { s.xmm[i][1] = 0x2000 + i; }));
  }
  p.push_back(Field("mxcsr", [](CpuState& s) { s.mxcsr = 0x9f80; }));  // FZ set
  p.push_back(Field("cpl", [](CpuState& s) { s.cpl = 3; }));
  p.push_back(Field("halted", [](CpuState& s) { s.halted = true; }));
  p.push_back(Field("shutdown", [](CpuState& s) { s.shutdown = true; }));
  // The shadow matters with IF=1 and INTR high: the interrupt waits for it.
  auto intr_on = [](CpuRig& r) {
    r.Edit([](CpuState& s) { s.rflags |= kFlagIf; });
    r.cpu.SetIntrLine(true);
  };
  p.push_back(Field("interrupt_shadow_until", [](CpuState& s) { s.interrupt_shadow_until = 2; }, intr_on));
  p.push_back(Field("nmi_blocked", [](CpuState& s) { s.nmi_blocked = true; },
                    [](CpuRig& r) { r.cpu.InjectNmi(); }));
  CheckPieces("CPU", p);
}

TEST(StateCoverage, CpuLiveStateOutsideCpuState) {
  std::vector<Piece<CpuRig>> p = {
      {"icount", {}, [](CpuRig& r) { r.cpu.set_icount(r.cpu.icount() + 1000); }},
      {"icount (retired instructions)", {}, [](CpuRig& r) {
         const CpuState s = r.cpu.state();
         r.cpu.Run(5);
         r.cpu.SetState(s);  // only the count of retired instructions differs...
         r.mem().Write(kDataBase, std::vector<uint8_t>(8, 0).data(), 8);  // ...and its store
         r.mem().Write(kStackBase, std::vector<uint8_t>(kStackSize, 0).data(), kStackSize);
       }},
      {"INTR line (IF=0: held)", {}, [](CpuRig& r) { r.cpu.SetIntrLine(true); }},
      {"INTR line (IF=1: delivered)", [](CpuRig& r) { r.Edit([](CpuState& s) { s.rflags |= kFlagIf; }); },
       [](CpuRig& r) { r.cpu.SetIntrLine(true); }},
      {"pending NMI", {}, [](CpuRig& r) { r.cpu.InjectNmi(); }},
  };
  CheckPieces("CPU", p);
}

// deliveries_without_retire: a guest whose #UD handler is a UD2 never retires anything; the
// CPU shuts down after 2^16 deliveries. A breakpoint on the handler stops Run after each
// delivery, so the count can be saved part-way and must carry on in the restored CPU.
TEST(StateCoverage, CpuDeliveriesWithoutRetire) {
  auto make = [](CpuRig& r) {
    const uint8_t ud2[2] = {0x0f, 0x0b};
    r.mem().Write(kCodeBase, ud2, 2);
    // #UD (vector 6) gate -> kCodeBase.
    uint64_t lo = (kCodeBase & 0xffff) | (uint64_t{kSelCode} << 16) | (uint64_t{0x8e} << 40) |
                  ((kCodeBase >> 16) & 0xffff) << 48 | uint64_t{1} << 32;  // IST1
    Put64(r.mem(), kIdtBase + 6 * 16, lo);
    Put64(r.mem(), kTssBase + 0x24, kStackTop);  // IST1: the stack does not grow
    Put64(r.mem(), kIdtBase + 6 * 16 + 8, 0);
    r.cpu.AddBreakpoint(kCodeBase);
  };
  const std::vector<uint64_t> counts = {1, 65536};
  for (uint64_t n : counts) {
    SCOPED_TRACE("after " + std::to_string(n) + " deliveries");
    CpuRig a, base;
    make(a);
    make(base);
    for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(a.cpu.Run(100).reason, StopReason::kBreakpoint);
    for (uint64_t i = 0; i + 1 < n; ++i) ASSERT_EQ(base.cpu.Run(100).reason, StopReason::kBreakpoint);
    EXPECT_NE(a.Save(), base.Save()) << "CPU: the delivery count does not reach SaveState's bytes";
    CpuRig b;
    make(b);
    b.Restore(a.Snap());
    // One more delivery each: the (2^16 + 1)th shuts the CPU down, in the original and the copy.
    const RunResult ra = a.cpu.Run(100), rb = b.cpu.Run(100), rbase = base.cpu.Run(100);
    EXPECT_EQ(rb.reason, ra.reason) << "CPU: restored delivery count behaves differently";
    EXPECT_EQ(b.cpu.state().shutdown, a.cpu.state().shutdown);
    if (n == 65536) {
      EXPECT_EQ(ra.reason, StopReason::kShutdown);
      EXPECT_EQ(rbase.reason, StopReason::kBreakpoint) << "one delivery fewer: no shutdown yet";
    }
  }
}

// Issue 10: the TLB is part of what the CPU does next. A guest that edits a PTE without
// INVLPG keeps reading through the stale entry; saving must not change that (the design:
// "taking a snapshot never changes the machine"), and a CPU restored from the snapshot must
// read what the original reads.
struct TlbRig : CpuRig {
  static constexpr uint64_t kPt = 0x7000;        // page table for linear 0x200000..0x3fffff
  static constexpr uint64_t kOld = 0x30000, kNew = 0x31000;
  TlbRig() {
    // PD entry 1 -> a 4 KiB page table mapping 0x200000 -> kOld, the rest identity.
    Put64(mem(), kPml4Base + 0x2000 + 8, kPt | 0x7);
    for (uint64_t i = 0; i < 512; ++i) Put64(mem(), kPt + 8 * i, (0x200000 + (i << 12)) | 0x7);
    Put64(mem(), kPt, kOld | 0x7);
    Put64(mem(), kOld, 0x01d);
    Put64(mem(), kNew, 0x9e3);
    // mov rax,[0x200000]; mov rbx,[0x200000]; hlt
    const std::vector<uint8_t> code = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00,
                                       0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x20, 0x00, 0xf4};
    mem().Write(kCodeBase, code.data(), code.size());
    Edit([](CpuState&) {});
  }
  void FirstReadThenEditPte() {
    ASSERT_EQ(cpu.Run(1).reason, StopReason::kTargetReached);
    ASSERT_EQ(cpu.state().gpr[kRax], 0x01du);
    Put64(mem(), kPt, kNew | 0x7);  // no INVLPG
  }
};

TEST(StateCoverage, CpuStaleTlbEntryIsUsedWithoutInvlpg) {
  TlbRig c;
  c.FirstReadThenEditPte();
  ASSERT_EQ(c.cpu.Run(2).reason, StopReason::kTargetReached);
  EXPECT_EQ(c.cpu.state().gpr[kRbx], 0x01du) << "the second read goes through the stale TLB entry";
}

// Saving must not flush the TLB (the original would then read the new PTE), and loading must
// bring the saved TLB back (the copy would read the new PTE).
TEST(StateCoverage, CpuRestoreKeepsStaleTlbEntry) {
  TlbRig unobserved, a, b;
  unobserved.FirstReadThenEditPte();
  a.FirstReadThenEditPte();
  b.Restore(a.Snap());
  ASSERT_EQ(unobserved.cpu.Run(2).reason, StopReason::kTargetReached);
  ASSERT_EQ(a.cpu.Run(2).reason, StopReason::kTargetReached);
  ASSERT_EQ(b.cpu.Run(2).reason, StopReason::kTargetReached);
  const uint64_t want = unobserved.cpu.state().gpr[kRbx];
  EXPECT_EQ(want, 0x01du);
  EXPECT_EQ(a.cpu.state().gpr[kRbx], want) << "saving the CPU changed what it reads next";
  EXPECT_EQ(b.cpu.state().gpr[kRbx], a.cpu.state().gpr[kRbx])
      << "the restored CPU reads through the new PTE, the original through its TLB";
}

}  // namespace
}  // namespace vmrr::coverage
