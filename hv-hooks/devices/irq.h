// The small interfaces that connect interrupt sources to interrupt controllers without the
// devices knowing the controllers: a device drives a numbered line (IrqSink), a controller
// tells whoever combines the outputs that its output may have changed (IntrListener).
#pragma once

namespace vmrr {

// Interrupt lines by number: ISA IRQ 0..15 / IOAPIC GSI 0..23. A level is the line's logical
// assertion (true = requesting); edge-triggered sources pulse it (true, then false).
class IrqSink {
 public:
  virtual ~IrqSink() = default;
  virtual void SetIrq(unsigned line, bool asserted) = 0;
};

class IntrListener {
 public:
  virtual ~IntrListener() = default;
  virtual void InterruptStateChanged() = 0;
};

// Raises/lowers one line of a sink; what a device is given at wiring time.
class IrqLine {
 public:
  IrqLine() = default;
  IrqLine(IrqSink* sink, unsigned line) : sink_(sink), line_(line) {}
  void Set(bool asserted) const {
    if (sink_) sink_->SetIrq(line_, asserted);
  }
  void Pulse() const {
    Set(true);
    Set(false);
  }
  unsigned line() const { return line_; }

 private:
  IrqSink* sink_ = nullptr;
  unsigned line_ = 0;
};

}  // namespace vmrr
