// Directed tests of the CPU's run loop and system architecture, written from the Intel SDM
// and docs/DESIGN.md "Instruction counts": REP string instructions with DF and exact icount
// (a target inside a REP loop), targets inside a decoded block, faults that do not retire,
// interrupt acceptance (IF, STI shadow, HLT wake-up), the real -> protected -> long mode boot
// path, paging (#PF error codes and CR2, A/D bits, INVLPG and CR3 reloads), SYSCALL/SYSRET,
// interrupt delivery with a privilege change and IST, self-modifying code, and determinism
// across save/load.
#include <cstring>
#include <memory>

#include "logformat/byte_order.h"
#include "tests/unit/cpu/cpu_test_util.h"

namespace vmrr::testing {
namespace {

using Bytes = std::vector<uint8_t>;

void Append32(Bytes& b, uint32_t v) { AppendLe(b, v, 4); }

// ---- string instructions ------------------------------------------------------------------

TEST_F(CpuTest, RepMovsbForwardAndBackward) {
  const char src[] = "0123456789abcdef";
  mem().Write(kDataBase, src, 16);
  // rep movsb, DF = 0: copies 10 bytes upward.
  Start(FlatMode::kLong64, {0xf3, 0xa4, 0xf4}, [](CpuState& s) {
    s.gpr[kRsi] = kDataBase;
    s.gpr[kRdi] = kDataBase + 0x100;
    s.gpr[kRcx] = 10;
  });
  RunToHalt();
  char out[16] = {};
  mem().Read(kDataBase + 0x100, out, 11);
  EXPECT_EQ(std::string(out, 11), std::string("0123456789") + '\0');
  EXPECT_EQ(reg(kRcx), 0u);
  EXPECT_EQ(reg(kRsi), kDataBase + 10);
  EXPECT_EQ(reg(kRdi), kDataBase + 0x10a);
  // std; rep movsb; cld: copies 4 bytes downward from the given (last) addresses.
  Start(FlatMode::kLong64, {0xfd, 0xf3, 0xa4, 0xfc, 0xf4}, [](CpuState& s) {
    s.gpr[kRsi] = kDataBase + 15;
    s.gpr[kRdi] = kDataBase + 0x20f;
    s.gpr[kRcx] = 4;
  });
  RunToHalt();
  mem().Read(kDataBase + 0x20c, out, 4);
  EXPECT_EQ(std::string(out, 4), "cdef");
  EXPECT_EQ(reg(kRsi), kDataBase + 11);
  EXPECT_EQ(reg(kRdi), kDataBase + 0x20b);
}

TEST_F(CpuTest, RepStosqAndZeroCount) {
  Start(FlatMode::kLong64, {0xf3, 0x48, 0xab, 0xf4}, [](CpuState& s) {  // rep stosq
    s.gpr[kRax] = 0x1122334455667788;
    s.gpr[kRdi] = kDataBase + 0x300;
    s.gpr[kRcx] = 3;
  });
  RunToHalt();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get64(mem(), kDataBase + 0x300 + 8 * i), 0x1122334455667788u);
  EXPECT_EQ(Get64(mem(), kDataBase + 0x318), 0u);
  EXPECT_EQ(reg(kRdi), kDataBase + 0x318);
  // RCX = 0: nothing stored, nothing moved, flags untouched (repe cmpsb).
  Start(FlatMode::kLong64, {0xf3, 0xa6, 0xf4}, [](CpuState& s) {
    s.gpr[kRsi] = kDataBase;
    s.gpr[kRdi] = kDataBase + 0x100;
    s.gpr[kRcx] = 0;
    s.rflags = 2 | kFlagCf | kFlagZf;
  });
  const uint64_t start = cpu.icount();
  RunToHalt();
  EXPECT_EQ(reg(kRsi), kDataBase);
  EXPECT_EQ(st().rflags & kStatus, kFlagCf | kFlagZf);
  // A REP instruction with nothing to do still retires once (otherwise a loop around it
  // would never reach an icount target).
  EXPECT_EQ(cpu.icount() - start, 2u);
}

TEST_F(CpuTest, ZeroCountRepInALoopStillAdvancesTheCount) {
  // L: rep movsb (rcx = 0); jmp L
  Start(FlatMode::kLong64, {0xf3, 0xa4, 0xeb, 0xfc}, [](CpuState& s) { s.gpr[kRcx] = 0; });
  const uint64_t start = cpu.icount();
  EXPECT_EQ(cpu.Run(start + 1001).reason, StopReason::kTargetReached);
  EXPECT_EQ(cpu.icount(), start + 1001);
}

TEST_F(CpuTest, RepeCmpsbStopsAtTheFirstDifference) {
  mem().Write(kDataBase, "abcdXfgh", 8);
  mem().Write(kDataBase + 0x100, "abcdYfgh", 8);
  Start(FlatMode::kLong64, {0xf3, 0xa6, 0xf4}, [](CpuState& s) {
    s.gpr[kRsi] = kDataBase;
    s.gpr[kRdi] = kDataBase + 0x100;
    s.gpr[kRcx] = 8;
  });
  const uint64_t start = cpu.icount();
  RunToHalt();
  EXPECT_EQ(reg(kRcx), 3u);  // five comparisons, the fifth differs
  EXPECT_EQ(reg(kRsi), kDataBase + 5);
  EXPECT_FALSE(st().rflags & kFlagZf);
  EXPECT_TRUE(st().rflags & kFlagCf);  // 'X' < 'Y'
  EXPECT_EQ(cpu.icount() - start, 5u + 1u);  // one per iteration, plus HLT
  // repne scasb finds 'f' (AL) at index 5.
  Start(FlatMode::kLong64, {0xf2, 0xae, 0xf4}, [](CpuState& s) {
    s.gpr[kRax] = 'f';
    s.gpr[kRdi] = kDataBase;
    s.gpr[kRcx] = 100;
  });
  RunToHalt();
  EXPECT_EQ(reg(kRdi), kDataBase + 6);
  EXPECT_EQ(reg(kRcx), 94u);
  EXPECT_TRUE(st().rflags & kFlagZf);
}

TEST_F(CpuTest, SixteenBitStringOpsWrapTheirPointers) {
  // In 16-bit code, rep stosb with DI = 0xFFFE and CX = 4 wraps DI within the segment.
  Start(FlatMode::kReal, {0xf3, 0xaa, 0xf4}, [](CpuState& s) {
    s.seg[kEs] = Segment{0x0800, 0x93, 0xffff, 0x8000};
    s.gpr[kRdi] = 0xfffe;
    s.gpr[kRcx] = 4;
    s.gpr[kRax] = 0x5a;
  });
  RunToHalt();
  EXPECT_EQ(reg(kRdi) & 0xffff, 2u);
  uint8_t b[4];
  mem().Read(0x8000 + 0xfffe, b, 2);
  mem().Read(0x8000, b + 2, 2);
  for (uint8_t x : b) EXPECT_EQ(x, 0x5a);
}

// ---- exact instruction counts ------------------------------------------------------------------

TEST_F(CpuTest, EveryRepIterationCountsAndATargetCanStopInsideTheLoop) {
  // mov ecx, 10; rep stosb; hlt
  const Bytes code = {0xb9, 0x0a, 0x00, 0x00, 0x00, 0xf3, 0xaa, 0xf4};
  auto setup = [](CpuState& s) {
    s.gpr[kRdi] = kDataBase + 0x400;
    s.gpr[kRax] = 0x77;
  };
  Start(FlatMode::kLong64, code, setup);
  const uint64_t start = cpu.icount();
  RunResult r = cpu.Run(start + 4);  // mov + 3 iterations
  EXPECT_EQ(r.reason, StopReason::kTargetReached);
  EXPECT_EQ(cpu.icount(), start + 4);
  EXPECT_EQ(reg(kRcx), 7u);
  EXPECT_EQ(st().rip, kCodeBase + 5);  // still at the REP instruction
  EXPECT_EQ(reg(kRdi), kDataBase + 0x403);
  r = cpu.Run(start + 9);
  EXPECT_EQ(reg(kRcx), 2u);
  r = RunToHalt();
  EXPECT_EQ(r.reason, StopReason::kHalted);
  EXPECT_EQ(cpu.icount(), start + 1 + 10 + 1);
  EXPECT_EQ(reg(kRdi), kDataBase + 0x40a);
  const std::vector<uint8_t> stepped = cpu.SaveBytes();
  // The same program without intermediate stops ends in the same state.
  Start(FlatMode::kLong64, code, setup);
  cpu.set_icount(start);
  RunToHalt();
  EXPECT_EQ(cpu.SaveBytes(), stepped);
}

TEST_F(CpuTest, TargetInsideADecodedBlock) {
  Bytes code(10, 0x90);  // ten NOPs, one block
  code.push_back(0xf4);
  Start(FlatMode::kLong64, code);
  const uint64_t start = cpu.icount();
  EXPECT_EQ(cpu.Run(start + 3).reason, StopReason::kTargetReached);
  EXPECT_EQ(st().rip, kCodeBase + 3);
  EXPECT_EQ(cpu.Run(start + 7).reason, StopReason::kTargetReached);
  EXPECT_EQ(st().rip, kCodeBase + 7);
  EXPECT_EQ(cpu.Run(start + 7).icount, start + 7);  // a reached target does nothing
  EXPECT_EQ(st().rip, kCodeBase + 7);
  EXPECT_EQ(RunToHalt().reason, StopReason::kHalted);
  EXPECT_EQ(cpu.icount(), start + 11);
}

TEST_F(CpuTest, FaultingInstructionsDoNotRetire) {
  Start(FlatMode::kLong64, {0x90, 0x0f, 0x0b, 0xf4});  // nop; ud2
  const uint64_t start = cpu.icount();
  RunToHalt();
  EXPECT_EQ(FaultVector(), 6);
  EXPECT_EQ(Frame64(0), kCodeBase + 1);  // #UD reports the faulting instruction
  EXPECT_EQ(cpu.icount() - start, 2u);    // the NOP and the handler's HLT; not UD2
  // A target equal to the count before the faulting instruction stops before it.
  Start(FlatMode::kLong64, {0x90, 0x0f, 0x0b, 0xf4});
  const uint64_t s2 = cpu.icount();
  cpu.Run(s2 + 1);
  EXPECT_EQ(st().rip, kCodeBase + 1);
  EXPECT_EQ(FaultVector(), -1);
}

TEST_F(CpuTest, PageFaultInsideRepKeepsTheCompletedIterations) {
  // 4 KiB page table for 0x200000..0x3fffff (PD[1]); page 0x201000 not present.
  const uint64_t pt = 0x7000;
  Start(FlatMode::kLong64, {0xf3, 0xaa, 0xf4}, [&](CpuState& s) {
    for (uint64_t i = 0; i < 512; ++i) Put64(mem(), pt + 8 * i, (0x200000 + (i << 12)) | 0x7);
    Put64(mem(), pt + 8 * 1, 0);
    Put64(mem(), kPml4Base + 0x2000 + 8, pt | 0x7);
    s.gpr[kRdi] = 0x200ffc;
    s.gpr[kRcx] = 10;
    s.gpr[kRax] = 0x11;
  });
  const uint64_t start = cpu.icount();
  RunToHalt();
  ASSERT_EQ(FaultVector(), 14);
  EXPECT_EQ(st().cr2, 0x201000u);
  EXPECT_EQ(Frame64(0), 2u);  // error code: write, supervisor, not present
  EXPECT_EQ(Frame64(1), kCodeBase);
  EXPECT_EQ(reg(kRcx), 6u);   // four iterations done
  EXPECT_EQ(reg(kRdi), 0x201000u);
  EXPECT_EQ(cpu.icount() - start, 4u + 1u);  // four iterations + the handler's HLT
}

// CALL rel, RET, PUSH r64 and POP r64 in 64-bit mode (the fast handlers' forms).
TEST_F(CpuTest, CallRetPushPop64) {
  Start(FlatMode::kLong64, {0xe8, 0x05, 0x00, 0x00, 0x00,  // 0: call F (10)
                            0xf4,                          // 5: hlt
                            0x90, 0x90, 0x90, 0x90,        // 6
                            0x54,                          // 10: F: push rsp
                            0x58,                          // 11: pop rax
                            0x48, 0x8b, 0x1c, 0x24,        // 12: mov rbx, [rsp]
                            0xc3});                        // 16: ret
  const uint64_t sp = st().gpr[kRsp];
  RunToHalt();
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().rip, kCodeBase + 6);
  EXPECT_EQ(reg(kRax), sp - 8) << "PUSH RSP pushes RSP as it was before the push";
  EXPECT_EQ(reg(kRbx), kCodeBase + 5) << "CALL pushed the address after it";
  EXPECT_EQ(reg(kRsp), sp);
  // POP RSP leaves the value loaded, not that value plus 8.
  Start(FlatMode::kLong64, {0x51, 0x5c, 0xf4}, [](CpuState& s) { s.gpr[kRcx] = 0x123450; });
  RunToHalt();
  EXPECT_EQ(reg(kRsp), 0x123450u);
}

// Loads through FS and GS in 64-bit mode add the segment's base, on a TLB miss and on a hit
// (the second access to a page), also when the offset's own page is in the TLB: MOV, MOVZX,
// MOVSX, CMP m, imm and ADD r, m.
TEST_F(CpuTest, FsGsLoadsAddTheBase64) {
  Start(FlatMode::kLong64,
        {0x4c, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00,              // mov r8, [0x10] (page 0 in the TLB)
         0x64, 0x48, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00,        // mov rax, fs:[0x10]
         0x64, 0x48, 0x8b, 0x0c, 0x25, 0x10, 0x00, 0x00, 0x00,        // mov rcx, fs:[0x10]
         0x65, 0x0f, 0xb6, 0x14, 0x25, 0x20, 0x00, 0x00, 0x00,        // movzx edx, byte gs:[0x20]
         0x65, 0x48, 0x0f, 0xbe, 0x34, 0x25, 0x20, 0x00, 0x00, 0x00,  // movsx rsi, byte gs:[0x20]
         0x64, 0x48, 0x03, 0x3c, 0x25, 0x10, 0x00, 0x00, 0x00,        // add rdi, fs:[0x10]
         0x64, 0x48, 0x83, 0x3c, 0x25, 0x10, 0x00, 0x00, 0x00, 0x05,  // cmp qword fs:[0x10], 5
         0xf4},
        [&](CpuState& s) {
          s.seg[kFs].base = kDataBase;
          s.seg[kGs].base = kDataBase + 0x100;
          s.gpr[kRdi] = 1;
          Put64(mem(), kDataBase + 0x10, 0x1122334455667788);
          Put64(mem(), kDataBase, 0);
          const uint8_t b = 0xf0;
          mem().Write(kDataBase + 0x120, &b, 1);
        });
  RunToHalt();
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(reg(kRax), 0x1122334455667788u);
  EXPECT_EQ(reg(kRcx), 0x1122334455667788u);
  EXPECT_EQ(reg(kRdx), 0xf0u);
  EXPECT_EQ(reg(kRsi), 0xfffffffffffffff0u);
  EXPECT_EQ(reg(kRdi), 0x1122334455667789u);
  EXPECT_EQ(st().rflags & (kFlagZf | kFlagCf | kFlagSf), 0u);
}

TEST_F(CpuTest, FaultingRetAndPopChangeNothing64) {
  // RET to a non-canonical address: #GP on the RET, RSP still at the return address.
  Start(FlatMode::kLong64, {0x50, 0xc3, 0xf4}, [](CpuState& s) { s.gpr[kRax] = 0x0000800000000000; });
  const uint64_t sp = st().gpr[kRsp];
  RunToHalt();
  ASSERT_EQ(FaultVector(), 13);
  EXPECT_EQ(Frame64(1), kCodeBase + 1);
  EXPECT_EQ(Frame64(4), sp - 8);
  // RET and POP with RSP on a page that is not present: #PF, RSP and the register unchanged.
  const uint64_t pt = 0x7000;
  for (const uint8_t opcode : {uint8_t{0xc3}, uint8_t{0x58}}) {
    SCOPED_TRACE(opcode == 0xc3 ? "ret" : "pop rax");
    Start(FlatMode::kLong64, {opcode, 0xf4}, [&](CpuState& s) {
      for (uint64_t i = 0; i < 512; ++i) Put64(mem(), pt + 8 * i, (0x200000 + (i << 12)) | 0x7);
      Put64(mem(), pt + 8 * 1, 0);
      Put64(mem(), kPml4Base + 0x2000 + 8, pt | 0x7);
      s.gpr[kRsp] = 0x201000;
      s.gpr[kRax] = 0x5555;
    });
    RunToHalt();
    ASSERT_EQ(FaultVector(), 14);
    EXPECT_EQ(st().cr2, 0x201000u);
    EXPECT_EQ(Frame64(0), 0u);  // read, supervisor, not present
    EXPECT_EQ(Frame64(1), kCodeBase);
    EXPECT_EQ(Frame64(4), 0x201000u);
    EXPECT_EQ(reg(kRax), 0x5555u);
  }
}

// ---- interrupts ----------------------------------------------------------------------------------

TEST_F(CpuTest, InterruptWaitsForIfAndTheStiShadow) {
  // cli; nop; sti; nop; nop; nop; hlt
  Start(FlatMode::kLong64, {0xfa, 0x90, 0xfb, 0x90, 0x90, 0x90, 0xf4});
  platform.next_vector = 0x40;
  cpu.SetIntrLine(true);
  const uint64_t start = cpu.icount();
  RunToHalt();
  ASSERT_EQ(FaultVector(), 0x40);
  EXPECT_EQ(platform.acks, 1u);
  // Accepted after the instruction following STI: the frame's RIP is the second NOP after it.
  EXPECT_EQ(Frame64(0), kCodeBase + 4);
  EXPECT_FALSE(st().rflags & kFlagIf);        // interrupt gate
  EXPECT_TRUE(Frame64(2) & kFlagIf);           // pushed RFLAGS had IF
  EXPECT_EQ(cpu.icount() - start, 4u + 1u);   // delivery does not count
}

TEST_F(CpuTest, AnAsyncExitIsTakenBeforeAPendingInterruptIsDelivered) {
  // sti; nop; nop; hlt -- with the INTR line high, an async exit requested before Run must stop
  // the CPU where Run(target = this icount) would: no INTA, no delivery, RIP unchanged. Else a
  // recording stopped here would log an interrupt its replay (which stops by target) never takes.
  Start(FlatMode::kLong64, {0xfb, 0x90, 0x90, 0xf4});
  ASSERT_EQ(cpu.Run(cpu.icount() + 2).reason, StopReason::kTargetReached);  // sti; nop
  cpu.SetIntrLine(true);
  const uint64_t at = cpu.icount();
  const uint64_t rip = st().rip;
  cpu.RequestExitAsync();
  const RunResult r = cpu.Run(at + 100);
  EXPECT_EQ(r.reason, StopReason::kExitRequested);
  EXPECT_EQ(r.icount, at);
  EXPECT_EQ(platform.acks, 0u);
  EXPECT_EQ(st().rip, rip);
  // The request is consumed: the next Run delivers the interrupt.
  RunToHalt();
  EXPECT_EQ(platform.acks, 1u);
}

TEST_F(CpuTest, NoInterruptWithIfClearAndHltWakeUp) {
  Start(FlatMode::kLong64, {0x90, 0x90, 0xf4});
  platform.next_vector = 0x41;
  cpu.SetIntrLine(true);
  EXPECT_EQ(RunToHalt().reason, StopReason::kHalted);
  EXPECT_EQ(st().rip, kCodeBase + 3);
  EXPECT_EQ(platform.acks, 0u);
  // IF = 1: HLT waits; raising the line wakes it and delivers.
  cpu.SetIntrLine(false);
  Start(FlatMode::kLong64, {0xf4, 0x90, 0xf4}, [](CpuState& s) { s.rflags |= kFlagIf; });
  EXPECT_EQ(RunToHalt().reason, StopReason::kHalted);
  EXPECT_EQ(st().rip, kCodeBase + 1);
  const uint64_t halted_at = cpu.icount();
  EXPECT_EQ(RunToHalt().reason, StopReason::kHalted);  // still halted, nothing retires
  EXPECT_EQ(cpu.icount(), halted_at);
  cpu.SetIntrLine(true);
  RunToHalt();
  EXPECT_EQ(FaultVector(), 0x41);
  EXPECT_EQ(Frame64(0), kCodeBase + 1);  // returns after the HLT
}

TEST_F(CpuTest, MovSsShadowDelaysInterrupts) {
  // sti; nop; (interrupt possible) -- but with mov ss, ax after the nop it waits one more.
  // sti; mov eax, 0x10; mov ss, ax; nop; nop; hlt
  Start(FlatMode::kLong64, {0xfb, 0xb8, 0x10, 0x00, 0x00, 0x00, 0x8e, 0xd0, 0x90, 0x90, 0xf4});
  platform.next_vector = 0x42;
  cpu.SetIntrLine(true);
  RunToHalt();
  ASSERT_EQ(FaultVector(), 0x42);
  // STI shadow covers mov eax; accepted before mov ss? mov ss is at +6: the STI shadow ends
  // after mov eax (+1..+6), so the interrupt is taken before mov ss at +6.
  EXPECT_EQ(Frame64(0), kCodeBase + 6);
  // Now without STI in front: IF already set; mov ss, ax shadows the following NOP.
  Start(FlatMode::kLong64, {0x8e, 0xd0, 0x90, 0x90, 0xf4}, [](CpuState& s) {
    s.rflags |= kFlagIf;
    s.gpr[kRax] = 0x10;
  });
  cpu.SetIntrLine(false);
  cpu.Run(cpu.icount() + 1);  // mov ss retires
  cpu.SetIntrLine(true);
  RunToHalt();
  ASSERT_EQ(FaultVector(), 0x42);
  EXPECT_EQ(Frame64(0), kCodeBase + 3);  // after the shadowed NOP
}

// ---- real -> protected -> long mode ---------------------------------------------------------------

TEST_F(CpuTest, BootFromRealModeToLongMode) {
  MakeFlatState(FlatMode::kLong64, mem());  // GDT and identity page tables in memory
  const uint64_t prot = kCodeBase + 0x100, lng = kCodeBase + 0x200;
  // GDTR pseudo-descriptor at 0x9000: limit, base.
  const uint8_t gdtr[6] = {kGdtLimit, 0, 0x00, 0x10, 0x00, 0x00};
  mem().Write(0x9000, gdtr, 6);
  Bytes real = {
      0xfa,                          // cli
      0x0f, 0x01, 0x16, 0x00, 0x90,  // lgdt [0x9000]
      0x0f, 0x20, 0xc0,              // mov eax, cr0
      0x66, 0x83, 0xc8, 0x01,        // or eax, 1
      0x0f, 0x22, 0xc0,              // mov cr0, eax
      0x66, 0xea};                   // jmp far dword 0x18:prot
  Append32(real, static_cast<uint32_t>(prot));
  real.push_back(kSelCode32);
  real.push_back(0);
  Bytes p32 = {
      0xb8, 0x10, 0x00, 0x00, 0x00,  // mov eax, 0x10
      0x8e, 0xd8,                    // mov ds, ax
      0x8e, 0xd0,                    // mov ss, ax
      0x0f, 0x20, 0xe0,              // mov eax, cr4
      0x83, 0xc8, 0x20,              // or eax, 0x20 (PAE)
      0x0f, 0x22, 0xe0,              // mov cr4, eax
      0xb8, 0x00, 0x40, 0x00, 0x00,  // mov eax, kPml4Base
      0x0f, 0x22, 0xd8,              // mov cr3, eax
      0xb9, 0x80, 0x00, 0x00, 0xc0,  // mov ecx, 0xc0000080 (EFER)
      0x0f, 0x32,                    // rdmsr
      0x0d, 0x00, 0x01, 0x00, 0x00,  // or eax, 0x100 (LME)
      0x0f, 0x30,                    // wrmsr
      0x0f, 0x20, 0xc0,              // mov eax, cr0
      0x0d, 0x00, 0x00, 0x00, 0x80,  // or eax, 0x80000000 (PG)
      0x0f, 0x22, 0xc0,              // mov cr0, eax
      0xea};                         // jmp far 0x08:lng
  Append32(p32, static_cast<uint32_t>(lng));
  p32.push_back(kSelCode);
  p32.push_back(0);
  const Bytes l64 = {0x48, 0xb8, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12,  // mov rax, imm64
                     0x48, 0x89, 0xe3,                                            // mov rbx, rsp
                     0xf4};                                                       // hlt
  Code(real, kCodeBase);
  Code(p32, prot);
  Code(l64, lng);
  CpuState s = MakeFlatState(FlatMode::kReal, mem());
  s.gpr[kRsp] = kStackTop;
  cpu.SetState(s);
  ASSERT_EQ(RunToHalt().reason, StopReason::kHalted);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().rip, lng + l64.size());
  EXPECT_EQ(reg(kRax), 0x123456789abcdef0u);
  EXPECT_TRUE(st().efer & 0x400);                  // LMA
  EXPECT_TRUE(st().seg[kCs].attr & kSegAttrL);      // 64-bit code segment
  EXPECT_EQ(st().seg[kCs].selector, kSelCode);
  EXPECT_EQ(st().seg[kSs].selector, kSelData);
  EXPECT_EQ(st().cr0 & 0x80000001u, 0x80000001u);
  EXPECT_EQ(st().gdtr.base, kGdtBase);
  EXPECT_EQ(st().gdtr.limit, kGdtLimit);
}

// ---- paging ----------------------------------------------------------------------------------------

class CpuPagingTest : public CpuTest {
 protected:
  static constexpr uint64_t kPt = 0x7000;       // page table for 0x200000..0x3fffff
  static constexpr uint64_t kVa = 0x200000;
  uint64_t Pte(unsigned i) { return Get64(mem(), kPt + 8 * i); }
  void SetPte(unsigned i, uint64_t v) { Put64(mem(), kPt + 8 * i, v); }

  // 64-bit flat state whose 0x200000 region uses 4 KiB pages, all P|RW|US unless changed.
  void StartPaged(const Bytes& code, const std::function<void(CpuState&)>& tweak = {}) {
    Start(FlatMode::kLong64, code, [&](CpuState& s) {
      for (unsigned i = 0; i < 512; ++i) SetPte(i, (kVa + (uint64_t{i} << 12)) | 0x7);
      Put64(mem(), kPml4Base + 0x2000 + 8, kPt | 0x7);
      if (tweak) tweak(s);
    });
  }
  // Runs and returns the #PF error code (frame slot 0), checking CR2.
  uint64_t ExpectPageFault(uint64_t cr2) {
    RunToHalt();
    EXPECT_EQ(FaultVector(), 14);
    EXPECT_EQ(st().cr2, cr2);
    return Frame64(0);
  }
};

TEST_F(CpuPagingTest, ErrorCodesForNotPresentWriteProtectAndReservedBits) {
  // mov al, [rsi]
  StartPaged({0x8a, 0x06, 0xf4}, [&](CpuState& s) {
    SetPte(1, 0);
    s.gpr[kRsi] = kVa + 0x1234;
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0x1234), 0u);  // read, supervisor, not present
  // mov byte [rsi], 1 on a read-only page with CR0.WP = 1.
  StartPaged({0xc6, 0x06, 0x01, 0xf4}, [&](CpuState& s) {
    SetPte(2, (kVa + 0x2000) | 0x5);
    s.gpr[kRsi] = kVa + 0x2008;
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0x2008), 3u);  // P | W
  // Same with CR0.WP = 0: a supervisor write to a read-only page succeeds.
  StartPaged({0xc6, 0x06, 0x01, 0xf4}, [&](CpuState& s) {
    SetPte(2, (kVa + 0x2000) | 0x5);
    s.gpr[kRsi] = kVa + 0x2008;
    s.cr0 &= ~uint64_t{0x10000};
  });
  RunToHalt();
  EXPECT_EQ(FaultVector(), -1);
  uint8_t b = 0;
  mem().Read(kVa + 0x2008, &b, 1);
  EXPECT_EQ(b, 1);
  // Reserved bit (bit 51) in a present PTE: P | RSVD (8).
  StartPaged({0x8a, 0x06, 0xf4}, [&](CpuState& s) {
    SetPte(3, (kVa + 0x3000) | 0x7 | (uint64_t{1} << 51));
    s.gpr[kRsi] = kVa + 0x3000;
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0x3000), 9u);
}

TEST_F(CpuPagingTest, UserAccessToSupervisorPageAndNoExecute) {
  // CPL 3 reading a supervisor page: P | U (5); the fault switches to RSP0.
  StartPaged({0x8a, 0x06, 0xf4}, [&](CpuState& s) {
    SetPte(4, (kVa + 0x4000) | 0x3);  // P | RW, supervisor
    s.gpr[kRsi] = kVa + 0x4000;
    s.seg[kCs] = Segment{kSelUserCode | 3, 0xa0fb, 0xffffffff, 0};
    s.seg[kSs] = Segment{kSelUserData | 3, 0xc0f3, 0xffffffff, 0};
    s.cpl = 3;
    Put64(mem(), kTssBase + 4, kStackTop - 0x200);  // RSP0
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0x4000), 5u);
  EXPECT_EQ(st().cpl, 0);
  EXPECT_EQ(st().gpr[kRsp], kStackTop - 0x200 - 6 * 8);
  EXPECT_EQ(Frame64(2), uint64_t{kSelUserCode | 3});  // CS
  EXPECT_EQ(Frame64(4), kStackTop);                   // user RSP
  EXPECT_EQ(Frame64(5), uint64_t{kSelUserData | 3});  // SS
  // Executing from an NX page with EFER.NXE: P | I/D (0x11), CR2 = the target.
  StartPaged({0xff, 0xe6, 0xf4}, [&](CpuState& s) {  // jmp rsi
    SetPte(5, (kVa + 0x5000) | 0x7 | (uint64_t{1} << 63));
    s.gpr[kRsi] = kVa + 0x5010;
    s.efer |= 0x800;
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0x5010), 0x11u);
  EXPECT_EQ(Frame64(1), kVa + 0x5010);
}

TEST_F(CpuPagingTest, UserWriteToReadOnlyUserPageAndWriteProtectedSupervisorWithWpClear) {
  auto user = [&](CpuState& s) {
    s.seg[kCs] = Segment{kSelUserCode | 3, 0xa0fb, 0xffffffff, 0};
    s.seg[kSs] = Segment{kSelUserData | 3, 0xc0f3, 0xffffffff, 0};
    s.cpl = 3;
    Put64(mem(), kTssBase + 4, kStackTop - 0x200);
  };
  // CPL 3 writing a read-only user page: P | W | U (7), whatever CR0.WP says.
  StartPaged({0xc6, 0x06, 0x01, 0xf4}, [&](CpuState& s) {
    SetPte(10, (kVa + 0xa000) | 0x5);  // P | US, read-only
    s.gpr[kRsi] = kVa + 0xa010;
    s.cr0 &= ~uint64_t{0x10000};
    user(s);
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0xa010), 7u);
  // CPL 3 fetching from a supervisor page: P | U | I/D (0x15) with NXE on.
  StartPaged({0xff, 0xe6}, [&](CpuState& s) {  // jmp rsi
    SetPte(11, (kVa + 0xb000) | 0x1);  // P, supervisor
    s.gpr[kRsi] = kVa + 0xb000;
    s.efer |= 0x800;
    user(s);
  });
  EXPECT_EQ(ExpectPageFault(kVa + 0xb000), 0x15u);
}

TEST_F(CpuTest, ThirtyTwoBitPagingNotPresentLargePage) {
  // 32-bit paging with 4 MiB pages; PDE 1 (0x400000..0x7fffff) not present.
  Start(FlatMode::kProt32Paged, {0x8b, 0x06, 0xf4}, [&](CpuState& s) {  // mov eax, [esi]
    Put32(mem(), kPml4Base + 4, 0);
    s.gpr[kRsi] = 0x401234;
  });
  RunToHalt();
  ASSERT_EQ(FaultVector(), 14);
  EXPECT_EQ(st().cr2, 0x401234u);
  EXPECT_EQ(Frame32(0), 0u);          // error code
  EXPECT_EQ(Frame32(1), kCodeBase);   // EIP
  EXPECT_EQ(Frame32(2), kSelCode32);  // CS
}

// CLFLUSH checks its address as a one-byte load does (SDM Vol. 2A, CLFLUSH exceptions): a
// missing translation is #PF with CR2 = the address and a read's error code; a mapped one is
// no fault; in 64-bit mode a non-canonical address is #GP(0).
TEST_F(CpuTest, ClflushChecksItsAddress) {
  Start(FlatMode::kProt32Paged, {0x0f, 0xae, 0x3e, 0xf4}, [&](CpuState& s) {  // clflush [esi]
    Put32(mem(), kPml4Base + 4, 0);
    s.gpr[kRsi] = 0x401234;
  });
  RunToHalt();
  ASSERT_EQ(FaultVector(), 14);
  EXPECT_EQ(st().cr2, 0x401234u);
  EXPECT_EQ(Frame32(0), 0u);  // not present, read, supervisor
  Start(FlatMode::kProt32Paged, {0x0f, 0xae, 0x3e, 0xf4}, [&](CpuState& s) { s.gpr[kRsi] = kDataBase; });
  RunToHalt();
  EXPECT_EQ(FaultVector(), -1);
  Start(FlatMode::kLong64, {0x0f, 0xae, 0x3e, 0xf4}, [&](CpuState& s) { s.gpr[kRsi] = 0x0000800000000000ull; });
  RunToHalt();
  EXPECT_EQ(FaultVector(), 13);
}

TEST_F(CpuPagingTest, AccessedAndDirtyBits) {
  // mov al, [rsi]; mov byte [rdi], 1
  StartPaged({0x8a, 0x06, 0xc6, 0x07, 0x01, 0xf4}, [&](CpuState& s) {
    s.gpr[kRsi] = kVa + 0x6000;
    s.gpr[kRdi] = kVa + 0x7000;
  });
  EXPECT_EQ(Pte(6) & 0x60, 0u);
  RunToHalt();
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(Pte(6) & 0x60, 0x20u);  // read: A only
  EXPECT_EQ(Pte(7) & 0x60, 0x60u);  // write: A and D
  EXPECT_EQ(Pte(8) & 0x60, 0u);     // untouched
  EXPECT_TRUE(Get64(mem(), kPml4Base + 0x2000 + 8) & 0x20);  // the PDE's A bit
}

TEST_F(CpuPagingTest, InvlpgAndCr3ReloadDropStaleTranslations) {
  mem().Write(0x300000, "\xaa", 1);
  mem().Write(0x301000, "\xbb", 1);
  mem().Write(0x302000, "\xcc", 1);
  Bytes code = {
      0x8a, 0x06,                          // mov al, [rsi]      (fills the TLB: 0xaa)
      0xc7, 0x07, 0x07, 0x10, 0x30, 0x00,  // mov dword [rdi], 0x301007 (PTE -> 0x301000)
      0x0f, 0x01, 0x3e,                    // invlpg [rsi]
      0x8a, 0x1e,                          // mov bl, [rsi]      (0xbb)
      0xc7, 0x07, 0x07, 0x20, 0x30, 0x00,  // mov dword [rdi], 0x302007 (PTE -> 0x302000)
      0x0f, 0x20, 0xd8,                    // mov rax, cr3
      0x0f, 0x22, 0xd8,                    // mov cr3, rax
      0x8a, 0x0e,                          // mov cl, [rsi]      (0xcc)
      0xf4};
  StartPaged(code, [&](CpuState& s) {
    SetPte(9, 0x300000 | 0x7);
    s.gpr[kRsi] = kVa + 0x9000;
    s.gpr[kRdi] = kPt + 8 * 9;
  });
  RunToHalt();
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(reg(kRbx) & 0xff, 0xbbu);
  EXPECT_EQ(reg(kRcx) & 0xff, 0xccu);
}

// ---- SYSCALL / SYSRET, privilege changes, IST ---------------------------------------------------

TEST_F(CpuTest, SyscallSysretRoundTrip) {
  const uint64_t kernel = kCodeBase + 0x100;
  // user: mov eax, 42; syscall; mov edx, 0x77; jmp $
  Code({0xb8, 0x2a, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xba, 0x77, 0x00, 0x00, 0x00, 0xeb, 0xfe});
  // kernel: add eax, 1; sysretq
  Code({0x83, 0xc0, 0x01, 0x48, 0x0f, 0x07}, kernel);
  CpuState s = MakeFlatState(FlatMode::kLong64, mem());
  s.efer |= 1;  // SCE
  s.star = (uint64_t{kSelUserCode32} << 48) | (uint64_t{kSelCode} << 32);
  s.lstar = kernel;
  s.sfmask = kFlagIf | kFlagDf | kFlagTf;
  s.seg[kCs] = Segment{kSelUserCode | 3, 0xa0fb, 0xffffffff, 0};
  s.seg[kSs] = Segment{kSelUserData | 3, 0xc0f3, 0xffffffff, 0};
  s.cpl = 3;
  s.rflags = 2 | kFlagIf | kFlagDf | kFlagCf;
  cpu.SetState(s);
  const uint64_t start = cpu.icount();
  cpu.Run(start + 2);  // mov, syscall
  EXPECT_EQ(st().cpl, 0);
  EXPECT_EQ(st().rip, kernel);
  EXPECT_EQ(st().seg[kCs].selector, kSelCode);
  EXPECT_EQ(st().seg[kSs].selector, kSelData);
  EXPECT_EQ(reg(kRcx), kCodeBase + 7);              // return address
  EXPECT_EQ(reg(kR11) & ~uint64_t{kFlagRf}, 2 | kFlagIf | kFlagDf | kFlagCf);
  EXPECT_EQ(st().rflags & (kFlagIf | kFlagDf), 0u);  // masked by SFMASK
  cpu.Run(start + 5);  // add, sysret, mov edx
  EXPECT_EQ(st().cpl, 3);
  EXPECT_EQ(st().seg[kCs].selector, kSelUserCode | 3);
  EXPECT_EQ(st().seg[kSs].selector, kSelUserData | 3);
  EXPECT_EQ(reg(kRax), 43u);
  EXPECT_EQ(reg(kRdx), 0x77u);
  EXPECT_EQ(st().rip, kCodeBase + 12);
  EXPECT_EQ(st().rflags & (kFlagIf | kFlagDf | kFlagCf), kFlagIf | kFlagDf | kFlagCf);
}

TEST_F(CpuTest, SysenterSysexitRoundTrip32) {
  // SDM: SYSENTER loads flat CS = IA32_SYSENTER_CS, SS = CS + 8 (CPL 0), ESP/EIP from the
  // MSRs and clears IF; SYSEXIT (32-bit) returns to CS = SYSENTER_CS + 16, SS = + 24 (RPL 3),
  // EIP = EDX, ESP = ECX.
  const uint64_t kernel = kCodeBase + 0x100, back = kCodeBase + 0x80;
  Code({0xb8, 0x2a, 0x00, 0x00, 0x00, 0x0f, 0x34});     // user: mov eax, 42; sysenter
  Code({0xbb, 0x07, 0x00, 0x00, 0x00, 0xeb, 0xfe}, back);  // mov ebx, 7; jmp $
  Code({0x83, 0xc0, 0x01, 0x0f, 0x35}, kernel);          // kernel: add eax, 1; sysexit
  CpuState s = MakeFlatState(FlatMode::kProt32, mem());
  s.sysenter_cs = kSelCode32;
  s.sysenter_eip = kernel;
  s.sysenter_esp = 0xa000;
  s.seg[kCs] = Segment{kSelUserCode32 | 3, 0xc0fb, 0xffffffff, 0};
  s.seg[kSs] = Segment{kSelUserData | 3, 0xc0f3, 0xffffffff, 0};
  s.cpl = 3;
  s.rflags = 2 | kFlagIf;
  s.gpr[kRdx] = back;
  s.gpr[kRcx] = 0x9000;
  cpu.SetState(s);
  const uint64_t start = cpu.icount();
  cpu.Run(start + 2);  // mov, sysenter
  EXPECT_EQ(st().cpl, 0);
  EXPECT_EQ(st().rip, kernel);
  EXPECT_EQ(st().seg[kCs].selector, kSelCode32);
  EXPECT_EQ(st().seg[kSs].selector, kSelCode32 + 8);
  EXPECT_EQ(reg(kRsp), 0xa000u);
  EXPECT_EQ(st().rflags & kFlagIf, 0u);
  cpu.Run(start + 5);  // add, sysexit, mov ebx
  EXPECT_EQ(st().cpl, 3);
  EXPECT_EQ(st().seg[kCs].selector, (kSelCode32 + 16) | 3);
  EXPECT_EQ(st().seg[kSs].selector, (kSelCode32 + 24) | 3);
  EXPECT_EQ(reg(kRsp), 0x9000u);
  EXPECT_EQ(reg(kRax), 43u);
  EXPECT_EQ(reg(kRbx), 7u);
  EXPECT_EQ(st().rip, back + 5);
}

TEST_F(CpuTest, SysenterWithoutSysenterCsIsGp) {
  Start(FlatMode::kProt32, {0x0f, 0x34});  // sysenter with IA32_SYSENTER_CS = 0
  RunToHalt(100);
  EXPECT_EQ(FaultVector(), 13);
}

TEST_F(CpuTest, SoftwareInterruptFromUserModeSwitchesToRsp0) {
  Start(FlatMode::kLong64, {0x90, 0xcd, 0x80}, [&](CpuState& s) {
    // Gate 0x80: DPL 3 so that user code may use INT 0x80.
    mem().Write(kIdtBase + 0x80 * 16 + 5, "\xee", 1);
    Put64(mem(), kTssBase + 4, 0xa400);  // RSP0
    s.seg[kCs] = Segment{kSelUserCode | 3, 0xa0fb, 0xffffffff, 0};
    s.seg[kSs] = Segment{kSelUserData | 3, 0xc0f3, 0xffffffff, 0};
    s.cpl = 3;
    s.gpr[kRsp] = kStackTop - 8;
  });
  RunToHalt();
  ASSERT_EQ(FaultVector(), 0x80);
  EXPECT_EQ(st().cpl, 0);
  EXPECT_EQ(st().gpr[kRsp], 0xa400u - 5 * 8);
  EXPECT_EQ(Frame64(0), kCodeBase + 3);  // INT n is a trap: the next instruction
  EXPECT_EQ(Frame64(1), uint64_t{kSelUserCode | 3});
  EXPECT_EQ(Frame64(3), kStackTop - 8);
  EXPECT_EQ(Frame64(4), uint64_t{kSelUserData | 3});
  EXPECT_EQ(st().seg[kSs].selector & 3, 0);
  // A DPL 0 gate refuses INT n from CPL 3: #GP with error code vector*8+2.
  Start(FlatMode::kLong64, {0xcd, 0x81}, [&](CpuState& s) {
    Put64(mem(), kTssBase + 4, 0xa400);
    s.seg[kCs] = Segment{kSelUserCode | 3, 0xa0fb, 0xffffffff, 0};
    s.seg[kSs] = Segment{kSelUserData | 3, 0xc0f3, 0xffffffff, 0};
    s.cpl = 3;
  });
  RunToHalt();
  ASSERT_EQ(FaultVector(), 13);
  EXPECT_EQ(Frame64(0), 0x81u * 8 + 2);
  EXPECT_EQ(Frame64(1), kCodeBase);
}

TEST_F(CpuTest, InterruptStackTableOverridesTheStack) {
  // External interrupt 0x50 through a gate with IST = 1: the frame lands on IST1 (aligned
  // down to 16) even without a privilege change.
  Start(FlatMode::kLong64, {0x90, 0x90, 0xf4}, [&](CpuState& s) {
    mem().Write(kIdtBase + 0x50 * 16 + 4, "\x01", 1);  // IST index 1
    Put64(mem(), kTssBase + 0x24, 0xa608);              // IST1 (not 16-aligned on purpose)
    s.rflags |= kFlagIf;
    s.gpr[kRsp] = kStackTop - 24;
  });
  platform.next_vector = 0x50;
  cpu.SetIntrLine(true);
  RunToHalt();
  ASSERT_EQ(FaultVector(), 0x50);
  EXPECT_EQ(st().gpr[kRsp], 0xa600u - 5 * 8);
  EXPECT_EQ(Frame64(0), kCodeBase);          // taken before the first instruction
  EXPECT_EQ(Frame64(3), kStackTop - 24);     // old RSP
  EXPECT_EQ(st().cpl, 0);
}

// SDM (interrupt delivery in protected mode): an entry point beyond the handler's code segment
// limit is #GP(0), raised by the delivery itself, so the #GP frame holds the EIP of the UD2
// that was being delivered, not the bad entry point. #UD is benign, so the #GP that its
// delivery raises is delivered as it is (SDM table 6-5: no #DF for benign then contributory).
TEST_F(CpuTest, HandlerBeyondCodeSegmentLimitRaisesGpInDelivery) {
  Start(FlatMode::kProt32, {0x0f, 0x0b}, [&](CpuState&) {  // ud2
    const uint64_t off = 0x12345;  // beyond the 16-bit code segment's 0xffff limit
    Put64(mem(), kIdtBase + 6 * 8, (off & 0xffff) | (uint64_t{kSelCode16} << 16) |
                                       (uint64_t{0x8e} << 40) | ((off >> 16) & 0xffff) << 48);
  });
  RunToHalt(100);
  ASSERT_EQ(FaultVector(), 13);
  EXPECT_EQ(Frame32(0), 1u);         // error code 0 with EXT: raised while delivering #UD
  EXPECT_EQ(Frame32(1), kCodeBase);  // EIP of the ud2, not 0x12345
}

// A guest whose every delivery faults before an instruction retires (real mode, hidden CS
// limit 0: every fetch #GPs and the IVT delivery keeps the limit) would loop forever without
// icount moving; the CPU shuts down after a bounded number of such deliveries instead.
TEST_F(CpuTest, EndlessFaultLoopStillReturns) {
  Start(FlatMode::kReal, {0x90}, [](CpuState& s) { s.seg[kCs].limit = 0; });
  const RunResult r = cpu.Run(cpu.icount() + 1000);
  EXPECT_EQ(r.reason, StopReason::kShutdown);
  EXPECT_TRUE(st().shutdown);
}

// ---- self-modifying code -----------------------------------------------------------------------

TEST_F(CpuTest, StoreIntoTheNextInstructionOfTheSameBlockTakesEffect) {
  // mov byte [rip+1], 0x2a  (patches the low immediate byte of the next instruction)
  // mov eax, 1
  // hlt
  Start(FlatMode::kLong64, {0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x2a,
                            0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4});
  const uint64_t inval = cpu.block_invalidations();
  RunToHalt();
  EXPECT_EQ(reg(kRax), 0x2au);
  EXPECT_GT(cpu.block_invalidations(), inval);
  // Run the patched code again from the start: the new bytes are decoded, not the old block.
  CpuState s = st();
  s.rip = kCodeBase + 7;
  s.halted = false;
  s.gpr[kRax] = 0;
  cpu.SetState(s);
  RunToHalt();
  EXPECT_EQ(reg(kRax), 0x2au);
}

TEST_F(CpuTest, DeviceWriteIntoCachedCodeInvalidatesIt) {
  Start(FlatMode::kLong64, {0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4});  // mov eax, 1; hlt
  RunToHalt();
  EXPECT_EQ(reg(kRax), 1u);
  const uint8_t two = 2;
  mem().Write(kCodeBase + 1, &two, 1);  // DMA-style write through GuestMemory
  CpuState s = st();
  s.rip = kCodeBase;
  s.halted = false;
  cpu.SetState(s);
  RunToHalt();
  EXPECT_EQ(reg(kRax), 2u);
}

// ---- determinism and save/load ---------------------------------------------------------------------

// A loop of ~80k instructions: an LCG, scattered stores and loads, calls and a REP STOSB.
Bytes DeterminismProgram() {
  Bytes c = {
      0xb9, 0x88, 0x13, 0x00, 0x00,        // 0:  mov ecx, 5000
      0xbf, 0x00, 0x80, 0x00, 0x00,        // 5:  mov edi, kDataBase
      0xb8, 0x01, 0x00, 0x00, 0x00,        // 10: mov eax, 1
      0x69, 0xc0, 0x6d, 0x4e, 0xc6, 0x41,  // 15: L: imul eax, eax, 1103515245
      0x05, 0x39, 0x30, 0x00, 0x00,        // 21: add eax, 12345
      0x89, 0xc2,                          // 26: mov edx, eax
      0x81, 0xe2, 0xfc, 0x0f, 0x00, 0x00,  // 28: and edx, 0xffc
      0x89, 0x04, 0x17,                    // 34: mov [rdi+rdx], eax
      0x03, 0x1c, 0x17,                    // 37: add ebx, [rdi+rdx]
      0xe8, 0x03, 0x00, 0x00, 0x00,        // 40: call F (48)
      0xe2, 0xe0,                          // 45: loop L
      0xf4,                                // 47: hlt
      0x51,                                // 48: F: push rcx
      0xb9, 0x07, 0x00, 0x00, 0x00,        //     mov ecx, 7
      0x57,                                //     push rdi
      0x48, 0x8d, 0xbf, 0x00, 0x10, 0x00, 0x00,  // lea rdi, [rdi+0x1000]
      0x88, 0xd8,                          //     mov al, bl
      0xf3, 0xaa,                          //     rep stosb
      0x5f,                                //     pop rdi
      0x59,                                //     pop rcx
      0xc3};                               //     ret
  return c;
}

struct Machine {
  TestPlatform platform{1 << 20};
  Cpu cpu{platform};
  std::vector<uint8_t> Digest() {
    std::vector<uint8_t> d = cpu.SaveBytes();
    const uint8_t* ram = platform.memory().data();
    d.insert(d.end(), ram + kDataBase, ram + kStackBase + kStackSize);
    return d;
  }
};

TEST(CpuDeterminism, SameProgramTwiceAndAcrossSaveLoad) {
  const Bytes prog = DeterminismProgram();
  auto boot = [&](Machine& m) {
    CpuState s = MakeFlatState(FlatMode::kLong64, m.platform.memory());
    m.platform.memory().Write(kCodeBase, prog.data(), prog.size());
    m.cpu.SetState(s);
  };
  // Reference: run in chunks of 997 instructions (stops inside blocks and REP loops),
  // recording a digest at every boundary.
  Machine a;
  boot(a);
  std::vector<std::vector<uint8_t>> digests;
  for (;;) {
    const RunResult r = a.cpu.Run(a.cpu.icount() + 997);
    digests.push_back(a.Digest());
    if (r.reason != StopReason::kTargetReached) break;
  }
  ASSERT_GT(digests.size(), 50u);
  ASSERT_TRUE(a.cpu.state().halted);

  // Same program again, straight through: same final digest.
  Machine b;
  boot(b);
  EXPECT_EQ(b.cpu.Run(~uint64_t{0}).reason, StopReason::kHalted);
  EXPECT_EQ(b.Digest(), digests.back());

  // Again in chunks, hopping to a freshly loaded machine (SaveBytes/LoadBytes plus a copy of
  // RAM) every few chunks: identical digests at every boundary.
  auto c = std::make_unique<Machine>();
  boot(*c);
  for (size_t i = 0; i < digests.size(); ++i) {
    c->cpu.Run(c->cpu.icount() + 997);
    ASSERT_EQ(c->Digest(), digests[i]) << "diverged at chunk " << i;
    if (i % 7 == 3) {
      auto next = std::make_unique<Machine>();
      std::memcpy(next->platform.memory().data(), c->platform.memory().data(), 1 << 20);
      next->cpu.LoadBytes(c->cpu.SaveBytes());
      c = std::move(next);
      ASSERT_EQ(c->Digest(), digests[i]);
    }
  }
}

TEST(CpuDeterminism, LoadBytesRejectsGarbageAndKeepsTheState) {
  Machine m;
  m.cpu.SetState(MakeFlatState(FlatMode::kLong64, m.platform.memory()));
  const std::vector<uint8_t> good = m.cpu.SaveBytes();
  std::vector<uint8_t> bad = good;
  bad.resize(bad.size() - 3);
  EXPECT_THROW(m.cpu.LoadBytes(bad), StateError);
  EXPECT_EQ(m.cpu.SaveBytes(), good);
  bad = good;
  bad.push_back(0);
  EXPECT_THROW(m.cpu.LoadBytes(bad), StateError);
  EXPECT_EQ(m.cpu.SaveBytes(), good);
}

// IA32_BIOS_SIGN_ID (0x8b): Linux writes 0 to it before CPUID(1) (SDM vol 3 9.11.7.1) and
// reads the microcode revision back: the write is accepted, the revision reads 0. An MSR the
// CPU does not have raises #GP.
TEST_F(CpuTest, BiosSignIdWriteIsAcceptedUnknownMsrIsGp) {
  // mov ecx, 0x8b; xor eax, eax; xor edx, edx; wrmsr; rdmsr; hlt
  Start(FlatMode::kLong64, {0xb9, 0x8b, 0, 0, 0, 0x31, 0xc0, 0x31, 0xd2, 0x0f, 0x30, 0x0f, 0x32, 0xf4});
  RunToHalt();
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(reg(kRax), 0u);
  EXPECT_EQ(reg(kRdx), 0u);
  // mov ecx, 0x12345; rdmsr
  Start(FlatMode::kLong64, {0xb9, 0x45, 0x23, 0x01, 0, 0x0f, 0x32, 0xf4});
  RunToHalt();
  EXPECT_EQ(FaultVector(), 13);
}

}  // namespace
}  // namespace vmrr::testing
