// The console escape that `vmrr run` and `vmrr record` share: on a terminal in raw mode (which
// hands Ctrl-C to the guest, as QEMU -nographic does) Ctrl-A x ends the run and Ctrl-A Ctrl-A
// sends one Ctrl-A. EscapeEnvironment sits directly on the live host, below the Machine or the
// RecordingEnvironment, so the escape reaches neither the guest nor a log.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "hv-hooks/environment.h"

namespace vmrr::cli {

class EscapeEnvironment : public Environment {
 public:
  // enabled: console input is a terminal (otherwise every byte passes unchanged). on_quit, if
  // set, is called on Ctrl-A x on the thread that runs the machine, possibly in the middle of
  // one of its input points: fine for `vmrr run`; a recorder must not stop the machine there
  // (the log would end with inputs its replay never reaches) and instead polls
  // quit_requested() between run chunks.
  EscapeEnvironment(Environment& inner, bool enabled, std::function<void()> on_quit = {})
      : inner_(inner), enabled_(enabled), on_quit_(std::move(on_quit)) {}

  bool quit_requested() const { return quit_requested_; }

  int64_t SampleTime(uint64_t icount) override { return inner_.SampleTime(icount); }
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override;
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override {
    return inner_.PollNetFrame(icount, frame);
  }
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override { inner_.GetEntropy(icount, out); }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    inner_.ConsoleOutput(icount, bytes);
  }
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override {
    inner_.NetFrameSent(icount, frame);
  }
  // Reads the console as soon as it has input: bytes that the escape swallows whole (Ctrl-A x,
  // or a Ctrl-A whose second byte has not come yet) do not end the wait, so Ctrl-A x never
  // wakes an idle guest and a recording it stops ends where the guest idled.
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override;

 protected:
  Environment& inner_;

 private:
  void Filter(std::span<const uint8_t> in);  // appends what the guest gets to pending_

  bool enabled_;
  std::function<void()> on_quit_;
  bool quit_requested_ = false;
  bool after_ctrl_a_ = false;     // the last byte read was a Ctrl-A
  std::vector<uint8_t> pending_;  // console bytes for the guest, read but not yet polled
};

}  // namespace vmrr::cli
