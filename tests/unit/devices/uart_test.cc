// 16550A UART tests against the PC16550D datasheet: reset values, divisor latch, THR empty
// and received-data interrupts with IIR priorities, FIFO trigger/timeout, LSR/MSR, loopback.
#include <gtest/gtest.h>

#include "hv-hooks/devices/uart16550.h"
#include "test_support.h"

namespace vmrr {
namespace {

enum { kRbr = 0, kIer = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7 };

class UartTest : public ::testing::Test {
 protected:
  UartTest() : uart(env, ic, IrqLine(&irqs, 4)) {}
  uint8_t Rd(int reg) { return static_cast<uint8_t>(uart.Read(static_cast<uint64_t>(reg), 1)); }
  void Wr(int reg, uint8_t v) { uart.Write(static_cast<uint64_t>(reg), 1, v); }

  test::FakeEnvironment env;
  test::FakeIcount ic;
  test::IrqRecorder irqs;
  Uart16550 uart;
};

TEST_F(UartTest, ResetValues) {
  EXPECT_EQ(Rd(kLsr), 0x60) << "THRE and TEMT";
  EXPECT_EQ(Rd(kIir), 0x01) << "no interrupt pending, FIFOs off";
  EXPECT_EQ(Rd(kIer), 0x00);
  EXPECT_EQ(Rd(kMsr) & 0xf0, 0xb0) << "CTS, DSR, DCD from the attached terminal";
}

TEST_F(UartTest, TransmitGoesToEnvironmentWithIcount) {
  ic.value = 777;
  Wr(kRbr, 'h');
  Wr(kRbr, 'i');
  EXPECT_EQ(std::string(env.console_out.begin(), env.console_out.end()), "hi");
  EXPECT_EQ(env.console_out_icounts.front(), 777u);
  EXPECT_EQ(Rd(kLsr) & 0x60, 0x60);
}

TEST_F(UartTest, DivisorLatchIsBehindDlab) {
  Wr(kLcr, 0x83);
  Wr(0, 0x01);
  Wr(1, 0x00);  // 115200 baud
  EXPECT_EQ(Rd(0), 0x01);
  Wr(kLcr, 0x03);
  EXPECT_TRUE(env.console_out.empty()) << "a DLL write is not a transmit";
  EXPECT_EQ(Rd(kLcr), 0x03);
  Wr(kScr, 0x5a);
  EXPECT_EQ(Rd(kScr), 0x5a);
}

TEST_F(UartTest, ThrEmptyInterruptNeedsOut2AndClearsOnIirRead) {
  Wr(kIer, 0x02);
  EXPECT_EQ(Rd(kIir) & 0x0f, 0x02) << "enabling ETBEI with THR empty interrupts at once";
  Wr(kMcr, 0x08);  // OUT2 gates the IRQ onto the ISA bus
  Wr(kRbr, 'x');
  EXPECT_TRUE(irqs.level[4]);
  EXPECT_EQ(Rd(kIir), 0x02);
  EXPECT_FALSE(irqs.level[4]) << "reading IIR clears a THRE interrupt";
  EXPECT_EQ(Rd(kIir), 0x01);
  Wr(kMcr, 0x00);
  Wr(kRbr, 'y');
  EXPECT_FALSE(irqs.level[4]) << "without OUT2 the line stays low";
  EXPECT_EQ(Rd(kIir), 0x02) << "but IIR still reports it";
}

TEST_F(UartTest, ReceivedDataInterruptWithoutFifo) {
  Wr(kIer, 0x01);
  Wr(kMcr, 0x08);
  env.console_in = {'a', 'b'};
  uart.PollInput();
  EXPECT_EQ(env.console_in.size(), 1u) << "without FIFO the receiver holds one byte";
  EXPECT_TRUE(irqs.level[4]);
  EXPECT_EQ(Rd(kIir), 0x04);
  EXPECT_EQ(Rd(kLsr) & 1, 1);
  EXPECT_EQ(Rd(kRbr), 'a');
  EXPECT_EQ(Rd(kLsr) & 1, 0);
  EXPECT_FALSE(irqs.level[4]);
  uart.PollInput();
  EXPECT_EQ(Rd(kRbr), 'b');
}

TEST_F(UartTest, FifoTriggerLevelAndTimeout) {
  Wr(kFcr, 0x87);  // enable, clear both, trigger level 8
  EXPECT_EQ(Rd(kIir) & 0xc0, 0xc0) << "FIFOs-enabled bits";
  Wr(kIer, 0x01);
  env.console_in.assign(20, 'z');
  uart.PollInput();
  EXPECT_EQ(env.console_in.size(), 4u) << "16 bytes fit";
  EXPECT_EQ(Rd(kIir), 0xc4) << "at or above trigger: received data available";
  for (int i = 0; i < 9; ++i) Rd(kRbr);
  EXPECT_EQ(Rd(kIir), 0xcc) << "below trigger with data: character timeout";
  for (int i = 0; i < 7; ++i) Rd(kRbr);
  EXPECT_EQ(Rd(kIir), 0xc1);
}

TEST_F(UartTest, LineStatusInterruptHasPriorityAndOverrunClearsOnRead) {
  Wr(kMcr, 0x10);  // loopback, FIFO off
  Wr(kIer, 0x05);
  Wr(kRbr, 1);
  Wr(kRbr, 2);  // overrun: holding register still full
  EXPECT_EQ(Rd(kIir), 0x06);
  EXPECT_EQ(Rd(kLsr) & 0x03, 0x03);
  EXPECT_EQ(Rd(kLsr) & 0x02, 0x00) << "reading LSR clears OE";
  EXPECT_EQ(Rd(kIir), 0x04);
  EXPECT_EQ(Rd(kRbr), 1);
  EXPECT_TRUE(env.console_out.empty()) << "loopback keeps bytes off the line";
}

TEST_F(UartTest, LoopbackModemStatusFollowsModemControl) {
  Wr(kMcr, 0x10);
  Rd(kMsr);
  Wr(kMcr, 0x13);  // loop + DTR + RTS
  uint8_t msr = Rd(kMsr);
  EXPECT_EQ(msr & 0xf0, 0x30) << "CTS=RTS, DSR=DTR";
  EXPECT_EQ(msr & 0x03, 0x03) << "DCTS and DDSR deltas";
  EXPECT_EQ(Rd(kMsr) & 0x0f, 0x00) << "deltas clear on read";
}

TEST_F(UartTest, NoInputPollInLoopback) {
  Wr(kMcr, 0x10);
  env.console_in = {'q'};
  uart.PollInput();
  EXPECT_EQ(env.console_in.size(), 1u);
}

TEST_F(UartTest, SaveMutateRestore) {
  Wr(kFcr, 0x01);
  env.console_in = {'1', '2', '3'};
  uart.PollInput();
  test::ExpectSaveMutateRestore(uart, [&] {
    Rd(kRbr);
    Wr(kIer, 0x0f);
    Wr(kLcr, 0x1b);
  });
  EXPECT_EQ(Rd(kRbr), '1');
}

}  // namespace
}  // namespace vmrr
