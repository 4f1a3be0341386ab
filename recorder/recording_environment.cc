// RecordingEnvironment: forwards to the live environment and logs what it returns.
#include "recorder/recording_environment.h"

#include <algorithm>

#include "hv-hooks/host/live_environment.h"

namespace vmrr {

RecordingEnvironment::RecordingEnvironment(Environment& inner, log::LogWriter& writer,
                                           RecordingEnvironmentOptions options)
    : inner_(inner), writer_(writer), options_(options) {}

int64_t RecordingEnvironment::SampleTime(uint64_t icount) {
  int64_t t = inner_.SampleTime(icount);
  writer_.Append(log::Record{icount, log::TimeSample{t}});
  ++inputs_logged_;
  return t;
}

std::vector<uint8_t> RecordingEnvironment::PollConsoleInput(uint64_t icount, size_t max_bytes) {
  std::vector<uint8_t> bytes = inner_.PollConsoleInput(icount, max_bytes);
  if (!bytes.empty()) {
    writer_.Append(log::Record{icount, log::ConsoleIn{bytes}});
    ++inputs_logged_;
  }
  return bytes;
}

bool RecordingEnvironment::PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) {
  if (!inner_.PollNetFrame(icount, frame)) return false;
  writer_.Append(log::Record{icount, log::NetRx{*frame}});
  ++inputs_logged_;
  return true;
}

void RecordingEnvironment::GetEntropy(uint64_t icount, std::span<uint8_t> out) {
  inner_.GetEntropy(icount, out);
  writer_.Append(log::Record{icount, log::Entropy{std::vector<uint8_t>(out.begin(), out.end())}});
  ++inputs_logged_;
}

void RecordingEnvironment::ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) {
  outputs_[0].Add(bytes);
  inner_.ConsoleOutput(icount, bytes);
}

void RecordingEnvironment::NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) {
  outputs_[1].Add(frame);
  inner_.NetFrameSent(icount, frame);
}

bool RecordingEnvironment::WaitForInput(uint64_t icount, int64_t deadline_host_ns) {
  // The machine sees one wait with the live environment's answer; the recorder only slices it
  // to flush frames. A wait with nothing scheduled is an input (its answer decides whether
  // the guest can ever wake) and is logged, also when a stop cuts it short: whether the
  // machine then looks at the answer is its own decision, made after this one; a replay of
  // a stopped recording takes a last IdleWake at the stop's icount as the wait it stopped in.
  for (;;) {
    writer_.Poll();
    int64_t slice_end = deadline_host_ns;
    if (options_.max_idle_wait_ns > 0) {
      int64_t now = LiveEnvironment::HostNowNs();
      if (deadline_host_ns - now > options_.max_idle_wait_ns) slice_end = now + options_.max_idle_wait_ns;
    }
    bool ready = inner_.WaitForInput(icount, slice_end);
    if (ready || slice_end == deadline_host_ns || interrupted_.load()) {
      if (deadline_host_ns == kWaitForever) {
        writer_.Append(log::Record{icount, log::IdleWake{ready}});
        ++inputs_logged_;
      }
      writer_.Poll();
      return ready;
    }
    if (options_.on_idle_slice) options_.on_idle_slice();
  }
}

void RecordingEnvironment::AppendOutputRecords(uint64_t icount, bool all) {
  for (size_t c = 0; c < 2; ++c) {
    if (!all && outputs_[c].total_bytes == written_totals_[c]) continue;
    if (!all && written_totals_[c] == ~uint64_t{0} && outputs_[c].total_bytes == 0) continue;
    writer_.Append(log::Record{icount, log::Output{static_cast<log::OutputChannel>(c),
                                                   outputs_[c].total_bytes, outputs_[c].digest}});
    written_totals_[c] = outputs_[c].total_bytes;
  }
}

}  // namespace vmrr
