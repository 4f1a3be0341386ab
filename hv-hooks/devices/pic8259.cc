// PicPair: 8259A register model and priority resolution (after the Intel 8259A datasheet;
// same structure as QEMU's hw/intc/i8259.c).
#include "hv-hooks/devices/pic8259.h"

namespace vmrr {

namespace {
constexpr uint8_t kElcrMask[2] = {0xf8, 0xde};  // IRQ0,1,2,8,13 are always edge

// Priority (0 = highest) of the best line in mask under rotation priority_add; 8 if none.
int Priority(const PicPair::Chip& c, uint8_t mask) {
  if (mask == 0) return 8;
  int p = 0;
  while ((mask & (1u << ((p + c.priority_add) & 7))) == 0) ++p;
  return p;
}
}  // namespace

PicPair::PicPair() = default;

void PicPair::SetPin(int chip, unsigned pin, bool level) {
  Chip& c = chips_[chip];
  uint8_t mask = static_cast<uint8_t>(1u << pin);
  if (c.elcr & mask) {
    if (level) {
      c.irr |= mask;
      c.last_irr |= mask;
    } else {
      c.irr &= ~mask;
      c.last_irr &= ~mask;
    }
  } else {
    if (level) {
      if ((c.last_irr & mask) == 0) c.irr |= mask;
      c.last_irr |= mask;
    } else {
      c.last_irr &= ~mask;
    }
  }
}

int PicPair::GetIrq(int chip) const {
  const Chip& c = chips_[chip];
  int priority = Priority(c, c.irr & ~c.imr);
  if (priority == 8) return -1;
  // In service lines block equal and lower priorities, except masked ones in special mask
  // mode, and except the cascade line in special fully nested mode (so a higher-priority
  // slave request can interrupt a slave handler).
  uint8_t in_service = c.isr;
  if (c.special_mask) in_service &= ~c.imr;
  if (c.special_fully_nested && chip == 0) in_service &= ~(1u << 2);
  int current = Priority(c, in_service);
  return priority < current ? (priority + c.priority_add) & 7 : -1;
}

void PicPair::Update() {
  SetPin(0, 2, GetIrq(1) >= 0);
  if (listener_) listener_->InterruptStateChanged();
}

void PicPair::SetIrq(unsigned irq, bool level) {
  if (irq >= 16 || irq == 2) return;
  SetPin(irq >> 3, irq & 7, level);
  Update();
}

bool PicPair::OutputPending() const {
  // The slave's output is latched into the master's IRQ2 pin by Update().
  return GetIrq(0) >= 0;
}

void PicPair::Intack(int chip, int irq) {
  Chip& c = chips_[chip];
  if (c.auto_eoi) {
    if (c.rotate_on_auto_eoi) c.priority_add = static_cast<uint8_t>((irq + 1) & 7);
  } else {
    c.isr |= static_cast<uint8_t>(1u << irq);
  }
  if (!(c.elcr & (1u << irq))) c.irr &= static_cast<uint8_t>(~(1u << irq));
}

uint8_t PicPair::Acknowledge() {
  int irq = GetIrq(0);
  uint8_t vector;
  if (irq >= 0) {
    if (irq == 2) {
      int irq2 = GetIrq(1);
      if (irq2 >= 0) {
        Intack(1, irq2);
      } else {
        irq2 = 7;  // the slave withdrew its request: spurious IRQ15
      }
      vector = static_cast<uint8_t>(chips_[1].irq_base + irq2);
    } else {
      vector = static_cast<uint8_t>(chips_[0].irq_base + irq);
    }
    Intack(0, irq);
  } else {
    vector = static_cast<uint8_t>(chips_[0].irq_base + 7);  // spurious IRQ7
  }
  Update();
  return vector;
}

void PicPair::InitReset(int chip) {
  Chip& c = chips_[chip];
  Chip fresh;
  fresh.elcr = c.elcr;
  // Level-triggered requests are still asserted by their devices after re-initialisation.
  fresh.irr = c.irr & c.elcr;
  c = fresh;
}

void PicPair::WriteCommand(int chip, uint8_t v) {
  Chip& c = chips_[chip];
  if (v & 0x10) {  // ICW1
    InitReset(chip);
    c.init_state = 1;
    c.init4 = v & 1;
    c.single_mode = (v >> 1) & 1;
    // ICW1.LTIM (level mode for all lines) is an 8259A feature PCs replace with the ELCR.
  } else if (v & 0x08) {  // OCW3
    if (v & 0x04) c.poll = 1;
    if (v & 0x02) c.read_reg_select = v & 1;
    if (v & 0x40) c.special_mask = (v >> 5) & 1;
  } else {  // OCW2
    unsigned cmd = v >> 5;
    switch (cmd) {
      case 0:  // rotate in automatic EOI mode: clear
      case 4:  // set
        c.rotate_on_auto_eoi = static_cast<uint8_t>(cmd >> 2);
        break;
      case 1:    // non-specific EOI
      case 5: {  // rotate on non-specific EOI
        int p = Priority(c, c.isr);
        if (p != 8) {
          int irq = (p + c.priority_add) & 7;
          c.isr &= static_cast<uint8_t>(~(1u << irq));
          if (cmd == 5) c.priority_add = static_cast<uint8_t>((irq + 1) & 7);
        }
        break;
      }
      case 3:  // specific EOI
        c.isr &= static_cast<uint8_t>(~(1u << (v & 7)));
        break;
      case 6:  // set priority: line v&7 becomes lowest
        c.priority_add = static_cast<uint8_t>(((v & 7) + 1) & 7);
        break;
      case 7:  // rotate on specific EOI
        c.isr &= static_cast<uint8_t>(~(1u << (v & 7)));
        c.priority_add = static_cast<uint8_t>(((v & 7) + 1) & 7);
        break;
      default:  // 2: no operation
        break;
    }
  }
  Update();
}

void PicPair::WriteData(int chip, uint8_t v) {
  Chip& c = chips_[chip];
  switch (c.init_state) {
    case 0:  // OCW1
      c.imr = v;
      break;
    case 1:  // ICW2
      c.irq_base = v & 0xf8;
      c.init_state = c.single_mode ? (c.init4 ? 3 : 0) : 2;
      break;
    case 2:  // ICW3 (cascade wiring is fixed on a PC)
      c.init_state = c.init4 ? 3 : 0;
      break;
    case 3:  // ICW4
      c.special_fully_nested = (v >> 4) & 1;
      c.auto_eoi = (v >> 1) & 1;
      c.init_state = 0;
      break;
  }
  Update();
}

uint8_t PicPair::ReadPort(int chip, unsigned port) {
  Chip& c = chips_[chip];
  if (c.poll) {
    // Poll command: the read acts as an INTA for this chip and returns 0x80 | level.
    c.poll = 0;
    int irq = GetIrq(chip);
    if (irq < 0) return 0;
    Intack(chip, irq);
    Update();
    return static_cast<uint8_t>(0x80 | irq);
  }
  if (port == 0) return c.read_reg_select ? c.isr : c.irr;
  return c.imr;
}

uint64_t PicPair::Window::Read(uint64_t offset, unsigned size) {
  if (size != 1) return AllOnes(size);
  if (kind_ == 2) return pic_->chips_[offset & 1].elcr;
  return pic_->ReadPort(kind_, offset & 1);
}

void PicPair::Window::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 1) return;
  uint8_t v = static_cast<uint8_t>(value);
  if (kind_ == 2) {
    int chip = offset & 1;
    pic_->chips_[chip].elcr = v & kElcrMask[chip];
    pic_->Update();
  } else if (offset == 0) {
    pic_->WriteCommand(kind_, v);
  } else {
    pic_->WriteData(kind_, v);
  }
}

void PicPair::SaveState(StateWriter& out) const {
  out.Begin("PIC2", 1);
  for (const Chip& c : chips_) {
    for (uint8_t b : {c.last_irr, c.irr, c.imr, c.isr, c.priority_add, c.irq_base,
                      c.read_reg_select, c.poll, c.special_mask, c.init_state, c.auto_eoi,
                      c.rotate_on_auto_eoi, c.special_fully_nested, c.init4, c.single_mode,
                      c.elcr}) {
      out.U8(b);
    }
  }
}

void PicPair::LoadState(StateReader& in) {
  in.Begin("PIC2", 1);
  Chip chips[2];
  for (int i = 0; i < 2; ++i) {
    Chip& c = chips[i];
    c.last_irr = in.U8();
    c.irr = in.U8();
    c.imr = in.U8();
    c.isr = in.U8();
    c.priority_add = static_cast<uint8_t>(in.Bounded(in.U8(), 7, "PIC priority_add"));
    c.irq_base = in.U8();
    c.read_reg_select = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC read select"));
    c.poll = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC poll"));
    c.special_mask = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC special mask"));
    c.init_state = static_cast<uint8_t>(in.Bounded(in.U8(), 3, "PIC init state"));
    c.auto_eoi = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC auto EOI"));
    c.rotate_on_auto_eoi = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC rotate AEOI"));
    c.special_fully_nested = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC SFNM"));
    c.init4 = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC ICW4 needed"));
    c.single_mode = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIC single"));
    c.elcr = in.U8() & kElcrMask[i];
  }
  chips_[0] = chips[0];
  chips_[1] = chips[1];
  if (listener_) listener_->InterruptStateChanged();
}

}  // namespace vmrr
