// Uart16550: register model and interrupt identification (after the TI/National PC16550D
// datasheet).
#include "hv-hooks/devices/uart16550.h"

namespace vmrr {

namespace {
enum : uint8_t {
  kLsrDr = 0x01, kLsrOe = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40, kLsrErrors = 0x1e,
  kIerRx = 0x01, kIerThre = 0x02, kIerLsr = 0x04, kIerMsr = 0x08,
  kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10,
  kLcrDlab = 0x80,
};
// A terminal is attached: CTS, DSR and DCD asserted, no ring.
constexpr uint8_t kIdleModemStatus = 0xb0;
}  // namespace

Uart16550::Uart16550(Environment& env, const IcountSource& icount, IrqLine irq)
    : env_(env), icount_(icount), irq_(irq) {
  s_.msr = kIdleModemStatus;
}

unsigned Uart16550::TriggerLevel() const {
  static constexpr unsigned kLevels[4] = {1, 4, 8, 14};
  return (s_.fcr & 1) ? kLevels[s_.fcr >> 6] : 1;
}

void Uart16550::Receive(uint8_t byte) {
  unsigned capacity = (s_.fcr & 1) ? kFifoSize : 1;
  if (s_.rx_count >= capacity) {
    s_.lsr |= kLsrOe;  // overrun: the new byte is lost
    return;
  }
  s_.rx[(s_.rx_head + s_.rx_count) % kFifoSize] = byte;
  ++s_.rx_count;
  s_.lsr |= kLsrDr;
}

uint8_t Uart16550::PopRx() {
  if (s_.rx_count == 0) return 0;
  uint8_t b = s_.rx[s_.rx_head];
  s_.rx_head = static_cast<uint8_t>((s_.rx_head + 1) % kFifoSize);
  if (--s_.rx_count == 0) s_.lsr &= ~kLsrDr;
  return b;
}

bool Uart16550::WantsInput() const {
  // In loopback the receiver hears only the transmitter.
  unsigned capacity = (s_.fcr & 1) ? kFifoSize : 1;
  return !(s_.mcr & kMcrLoop) && s_.rx_count < capacity;
}

void Uart16550::PollInput() {
  if (!WantsInput()) return;
  unsigned capacity = (s_.fcr & 1) ? kFifoSize : 1;
  std::vector<uint8_t> bytes = env_.PollConsoleInput(icount_.icount(), capacity - s_.rx_count);
  for (uint8_t b : bytes) Receive(b);
  UpdateIrq();
}

uint8_t Uart16550::Iir() const {
  uint8_t fifo_bits = (s_.fcr & 1) ? 0xc0 : 0x00;
  uint8_t id = 0x01;  // no interrupt pending
  if ((s_.ier & kIerLsr) && (s_.lsr & (kLsrOe | kLsrErrors))) {
    id = 0x06;
  } else if ((s_.ier & kIerRx) && s_.rx_count > 0) {
    // Below the trigger level a FIFO reports a character timeout. Input only arrives at
    // input points, so the four-character idle time is taken as already elapsed.
    id = (s_.fcr & 1) && s_.rx_count < TriggerLevel() ? 0x0c : 0x04;
  } else if ((s_.ier & kIerThre) && s_.thr_ipending) {
    id = 0x02;
  } else if ((s_.ier & kIerMsr) && (s_.msr & 0x0f)) {
    id = 0x00;
  }
  return fifo_bits | id;
}

void Uart16550::UpdateIrq() {
  bool level = (Iir() & 1) == 0 && (s_.mcr & kMcrOut2);
  if (level != (s_.irq_level != 0)) {
    s_.irq_level = level;
    irq_.Set(level);
  }
}

void Uart16550::UpdateMsr(uint8_t status) {
  // status: the new CTS/DSR/RI/DCD bits (7:4); deltas accumulate until MSR is read.
  uint8_t old = s_.msr;
  uint8_t delta = s_.msr & 0x0f;
  if ((old ^ status) & 0x10) delta |= 0x01;
  if ((old ^ status) & 0x20) delta |= 0x02;
  if ((old & 0x40) && !(status & 0x40)) delta |= 0x04;  // TERI: trailing edge of ring
  if ((old ^ status) & 0x80) delta |= 0x08;
  s_.msr = static_cast<uint8_t>((status & 0xf0) | delta);
}

uint64_t Uart16550::Read(uint64_t offset, unsigned size) {
  if (size != 1) return AllOnes(size);
  uint8_t v = 0;
  switch (offset) {
    case 0:
      if (s_.lcr & kLcrDlab) {
        v = s_.dll;
      } else {
        v = PopRx();
      }
      break;
    case 1: v = (s_.lcr & kLcrDlab) ? s_.dlm : s_.ier; break;
    case 2:
      v = Iir();
      if ((v & 0x0f) == 0x02) s_.thr_ipending = 0;  // reading IIR clears a reported THRE
      break;
    case 3: v = s_.lcr; break;
    case 4: v = s_.mcr; break;
    case 5:
      v = s_.lsr;
      s_.lsr &= ~(kLsrOe | kLsrErrors);
      break;
    case 6:
      v = s_.msr;
      s_.msr &= 0xf0;
      break;
    case 7: v = s_.scr; break;
  }
  UpdateIrq();
  return v;
}

void Uart16550::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 1) return;
  uint8_t v = static_cast<uint8_t>(value);
  switch (offset) {
    case 0:
      if (s_.lcr & kLcrDlab) {
        s_.dll = v;
        break;
      }
      if (s_.mcr & kMcrLoop) {
        Receive(v);
      } else {
        env_.ConsoleOutput(icount_.icount(), std::span<const uint8_t>(&v, 1));
      }
      s_.lsr |= kLsrThre | kLsrTemt;
      s_.thr_ipending = 1;
      break;
    case 1:
      if (s_.lcr & kLcrDlab) {
        s_.dlm = v;
      } else {
        uint8_t old = s_.ier;
        s_.ier = v & 0x0f;
        // Enabling ETBEI while the holding register is empty raises THRE at once.
        if (!(old & kIerThre) && (v & kIerThre) && (s_.lsr & kLsrThre)) s_.thr_ipending = 1;
      }
      break;
    case 2: {
      bool was_enabled = s_.fcr & 1;
      bool enable = v & 1;
      // Changing the FIFO enable bit clears both FIFOs, as do the reset bits.
      if (was_enabled != enable || (v & 0x02)) {
        s_.rx_head = s_.rx_count = 0;
        s_.lsr &= ~kLsrDr;
      }
      s_.fcr = enable ? (v & 0xc1) : 0;
      break;
    }
    case 3: s_.lcr = v; break;
    case 4: {
      s_.mcr = v & 0x1f;
      uint8_t status = kIdleModemStatus;
      if (s_.mcr & kMcrLoop) {
        // Loopback: modem outputs feed the modem inputs (RTS->CTS, DTR->DSR, OUT1->RI,
        // OUT2->DCD).
        status = static_cast<uint8_t>(((s_.mcr & kMcrRts) ? 0x10 : 0) |
                                      ((s_.mcr & kMcrDtr) ? 0x20 : 0) |
                                      ((s_.mcr & kMcrOut1) ? 0x40 : 0) |
                                      ((s_.mcr & kMcrOut2) ? 0x80 : 0));
      }
      UpdateMsr(status);
      break;
    }
    case 5: break;  // LSR is read-only (factory test writes ignored)
    case 6: break;
    case 7: s_.scr = v; break;
  }
  UpdateIrq();
}

void Uart16550::SaveState(StateWriter& out) const {
  out.Begin("U550", 1);
  for (uint8_t b : s_.rx) out.U8(b);
  for (uint8_t b : {s_.rx_head, s_.rx_count, s_.ier, s_.fcr, s_.lcr, s_.mcr, s_.lsr, s_.msr,
                    s_.scr, s_.dll, s_.dlm, s_.thr_ipending, s_.irq_level}) {
    out.U8(b);
  }
}

void Uart16550::LoadState(StateReader& in) {
  in.Begin("U550", 1);
  State s;
  for (uint8_t& b : s.rx) b = in.U8();
  s.rx_head = static_cast<uint8_t>(in.Bounded(in.U8(), kFifoSize - 1, "UART rx head"));
  s.rx_count = static_cast<uint8_t>(in.Bounded(in.U8(), kFifoSize, "UART rx count"));
  s.ier = static_cast<uint8_t>(in.Bounded(in.U8(), 0x0f, "UART IER"));
  s.fcr = in.U8() & 0xc1;
  s.lcr = in.U8();
  s.mcr = static_cast<uint8_t>(in.Bounded(in.U8(), 0x1f, "UART MCR"));
  s.lsr = in.U8();
  s.msr = in.U8();
  s.scr = in.U8();
  s.dll = in.U8();
  s.dlm = in.U8();
  s.thr_ipending = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "UART THRE pending"));
  s.irq_level = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "UART irq level"));
  if (!(s.fcr & 1) && s.rx_count > 1) in.Fail("UART holds more than one byte without FIFO");
  s_ = s;
}

}  // namespace vmrr
