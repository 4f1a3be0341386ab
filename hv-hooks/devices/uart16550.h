// The 16550A UART (COM1 at 0x3f8, IRQ4): divisor latch, 16-byte receive FIFO with trigger
// levels, IER/IIR interrupt priorities (line status > received data / character timeout >
// THR empty > modem status), LSR and MSR with delta bits, loopback, scratch register.
// Transmitted bytes go to Environment::ConsoleOutput at once (transmission takes no guest
// time, so THR empty follows every write); received bytes come from
// Environment::PollConsoleInput, polled by the machine at its input points (PollInput).
// As on a PC, the IRQ line is driven only while MCR.OUT2 is set.
#pragma once

#include <cstdint>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/devices/irq.h"
#include "hv-hooks/environment.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class Uart16550 : public BusDevice, public Device {
 public:
  static constexpr unsigned kFifoSize = 16;

  Uart16550(Environment& env, const IcountSource& icount, IrqLine irq);

  std::string_view name() const override { return "uart16550"; }

  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  // Takes as many console input bytes as the receiver has room for.
  void PollInput() override;
  // True if the receiver could take at least one byte (lets the machine skip the poll).
  bool WantsInput() const;

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  struct State {
    uint8_t rx[kFifoSize] = {};
    uint8_t rx_head = 0;
    uint8_t rx_count = 0;
    uint8_t ier = 0;
    uint8_t fcr = 0;  // bit0 FIFO enable, bits 7:6 trigger level
    uint8_t lcr = 0;
    uint8_t mcr = 0;
    uint8_t lsr = 0x60;  // THRE | TEMT
    uint8_t msr = 0;
    uint8_t scr = 0;
    uint8_t dll = 0x0c;  // 9600 baud, the BIOS default
    uint8_t dlm = 0;
    uint8_t thr_ipending = 0;  // THR-empty interrupt latched (cleared by IIR read / THR write)
    uint8_t irq_level = 0;
  };

  void Receive(uint8_t byte);
  uint8_t PopRx();
  uint8_t Iir() const;
  void UpdateIrq();
  void UpdateMsr(uint8_t new_status);
  unsigned TriggerLevel() const;

  Environment& env_;
  const IcountSource& icount_;
  IrqLine irq_;
  State s_;
};

}  // namespace vmrr
