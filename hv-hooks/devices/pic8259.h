// The 8259A programmable interrupt controller pair of a PC (master at 0x20, slave at 0xa0
// cascaded on master IRQ2) and the ELCR edge/level registers (0x4d0/0x4d1). Implements the
// datasheet's ICW1-4, OCW1-3, fully nested and special fully nested priority, rotation,
// specific/non-specific EOI, automatic EOI, special mask mode, poll mode and INTA.
#pragma once

#include <cstdint>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/devices/irq.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

class PicPair : public Device {
 public:
  PicPair();

  std::string_view name() const override { return "pic8259"; }

  // Drives ISA IRQ line 0..15 (2 is the cascade and is ignored from outside).
  void SetIrq(unsigned irq, bool level);
  // The master's INT output: an interrupt is requested from the CPU.
  bool OutputPending() const;
  // INTA cycle: the vector the CPU takes; spurious IRQ7/IRQ15 vector if nothing is pending.
  uint8_t Acknowledge();

  void SetListener(IntrListener* listener) { listener_ = listener; }

  // Bus windows: map master_io at 0x20 (2 ports), slave_io at 0xa0 (2), elcr_io at 0x4d0 (2).
  BusDevice& master_io() { return master_io_; }
  BusDevice& slave_io() { return slave_io_; }
  BusDevice& elcr_io() { return elcr_io_; }

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

  // One 8259A's registers (public for tests and for the state stream).
  struct Chip {
    uint8_t last_irr = 0;  // input levels last seen, for edge detection
    uint8_t irr = 0;
    uint8_t imr = 0;
    uint8_t isr = 0;
    uint8_t priority_add = 0;  // lowest-priority line + 1 (rotation)
    uint8_t irq_base = 0;
    uint8_t read_reg_select = 0;  // OCW3 RR/RIS: 0 IRR, 1 ISR
    uint8_t poll = 0;
    uint8_t special_mask = 0;
    uint8_t init_state = 0;  // 0 ready, 1 expect ICW2, 2 ICW3, 3 ICW4
    uint8_t auto_eoi = 0;
    uint8_t rotate_on_auto_eoi = 0;
    uint8_t special_fully_nested = 0;
    uint8_t init4 = 0;
    uint8_t single_mode = 0;
    uint8_t elcr = 0;
  };
  const Chip& chip(int i) const { return chips_[i]; }

 private:
  class Window : public BusDevice {
   public:
    Window(PicPair* pic, int kind) : pic_(pic), kind_(kind) {}
    uint64_t Read(uint64_t offset, unsigned size) override;
    void Write(uint64_t offset, unsigned size, uint64_t value) override;

   private:
    PicPair* pic_;
    int kind_;  // 0 master, 1 slave, 2 ELCR
  };

  void SetPin(int chip, unsigned pin, bool level);
  int GetIrq(int chip) const;
  void Intack(int chip, int irq);
  void Update();
  void InitReset(int chip);
  void WriteCommand(int chip, uint8_t v);
  void WriteData(int chip, uint8_t v);
  uint8_t ReadPort(int chip, unsigned port);

  Chip chips_[2];
  Window master_io_{this, 0};
  Window slave_io_{this, 1};
  Window elcr_io_{this, 2};
  IntrListener* listener_ = nullptr;
};

}  // namespace vmrr
