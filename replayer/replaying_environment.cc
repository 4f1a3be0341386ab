// ReplayingEnvironment: hands the machine its logged inputs at their exact icounts.
#include "replayer/replaying_environment.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vmrr {
namespace {

std::string Describe(const log::Record& r) {
  return log::KindName(r.kind_number()) + " at icount " + std::to_string(r.icount);
}

}  // namespace

const char* DivergenceKindName(Divergence::Kind kind) {
  switch (kind) {
    case Divergence::Kind::kInput: return "input";
    case Divergence::Kind::kMissedInput: return "missed-input";
    case Divergence::Kind::kInputSize: return "input-size";
    case Divergence::Kind::kOutput: return "output";
    case Divergence::Kind::kInterrupt: return "interrupt";
    case Divergence::Kind::kMissedInterrupt: return "missed-interrupt";
    case Divergence::Kind::kDigest: return "digest";
    case Divergence::Kind::kEnd: return "end";
  }
  return "?";
}

ReplayingEnvironment::ReplayingEnvironment(RecordSource& inputs, ReplayingEnvironmentOptions options)
    : inputs_(inputs), options_(std::move(options)) {}

const log::Record* ReplayingEnvironment::PeekInput(size_t i) { return Ahead(i); }

const log::Record* ReplayingEnvironment::Ahead(size_t i) {
  while (ahead_.size() <= i && !source_done_) {
    log::Record r;
    bool more;
    try {
      more = inputs_.Next(&r);
    } catch (...) {  // a damaged frame (LogError): the machine must not unwind through it
      Fail(std::current_exception());
      more = false;
    }
    if (!more) {
      if (!inputs_.MayGrow() || failure_) source_done_ = true;
      break;
    }
    if (log::IsInputKind(r.kind_number())) ahead_.push_back(std::move(r));
  }
  return i < ahead_.size() ? &ahead_[i] : nullptr;
}

void ReplayingEnvironment::Consume() {
  ahead_.pop_front();
  ++inputs_consumed_;
}

void ReplayingEnvironment::Fail(std::exception_ptr failure) {
  if (failure_) return;
  failure_ = failure;
  if (options_.on_failure) options_.on_failure(failure);
}

namespace {
Divergence SkippedInput(const log::Record& r, const std::string& asked) {
  return Divergence(Divergence::Kind::kMissedInput, r.icount,
                    "the log's " + Describe(r) + " was never asked for (" + asked + ")");
}
}  // namespace

void ReplayingEnvironment::CheckNoInputBefore(uint64_t icount) {
  const log::Record* r = PeekInput();
  if (r && r->icount < icount)
    throw SkippedInput(*r, "replay reached icount " + std::to_string(icount));
}

bool ReplayingEnvironment::NoInputSkippedBefore(uint64_t icount) {
  const log::Record* r = PeekInput();
  if (!r || r->icount >= icount) return true;
  Fail(std::make_exception_ptr(SkippedInput(*r, "the machine asked at icount " + std::to_string(icount))));
  return false;
}

const log::Record* ReplayingEnvironment::Expect(uint64_t icount, uint8_t kind, const char* what) {
  if (failure_) return nullptr;
  const log::Record* r = PeekInput();
  if (!r) {
    std::string msg = std::string("the machine asked for ") + what + " at icount " +
                      std::to_string(icount) + " after the last input of the log";
    if (options_.log_complete) Fail(std::make_exception_ptr(Divergence(Divergence::Kind::kInput, icount, msg)));
    else Fail(std::make_exception_ptr(LogExhausted(icount, msg)));
    return nullptr;
  }
  if (!NoInputSkippedBefore(icount)) return nullptr;
  if (r->icount != icount || r->kind_number() != kind) {
    Fail(std::make_exception_ptr(Divergence(Divergence::Kind::kInput, icount,
                                            std::string("the machine asked for ") + what + " at icount " +
                                                std::to_string(icount) + " but the log's next input is " +
                                                Describe(*r))));
    return nullptr;
  }
  return r;
}

// A failed call gives the neutral answer (time 0, no input, zero entropy, no wake-up); the
// machine stops at the end of the instruction that asked.
int64_t ReplayingEnvironment::SampleTime(uint64_t icount) {
  const log::Record* r = Expect(icount, static_cast<uint8_t>(log::RecordKind::kTimeSample), "a time sample");
  if (!r) return 0;
  int64_t t = std::get<log::TimeSample>(r->body).host_ns;
  Consume();
  return t;
}

std::vector<uint8_t> ReplayingEnvironment::PollConsoleInput(uint64_t icount, size_t max_bytes) {
  if (failure_) return {};
  const log::Record* r = PeekInput();
  if (!r || !NoInputSkippedBefore(icount)) return {};
  if (r->icount != icount || r->kind_number() != static_cast<uint8_t>(log::RecordKind::kConsoleIn))
    return {};
  std::vector<uint8_t> bytes = std::get<log::ConsoleIn>(r->body).bytes;
  if (bytes.size() > max_bytes) {
    Fail(std::make_exception_ptr(Divergence(Divergence::Kind::kInputSize, icount,
                                            "the log's ConsoleIn at icount " + std::to_string(icount) + " holds " +
                                                std::to_string(bytes.size()) + " bytes but the console takes " +
                                                std::to_string(max_bytes))));
    return {};
  }
  Consume();
  return bytes;
}

bool ReplayingEnvironment::PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) {
  if (failure_) return false;
  const log::Record* r = PeekInput();
  if (!r || !NoInputSkippedBefore(icount)) return false;
  if (r->icount != icount || r->kind_number() != static_cast<uint8_t>(log::RecordKind::kNetRx))
    return false;
  *frame = std::get<log::NetRx>(r->body).frame;
  Consume();
  return true;
}

void ReplayingEnvironment::GetEntropy(uint64_t icount, std::span<uint8_t> out) {
  std::fill(out.begin(), out.end(), 0);
  const log::Record* r = Expect(icount, static_cast<uint8_t>(log::RecordKind::kEntropy), "entropy");
  if (!r) return;
  const auto& bytes = std::get<log::Entropy>(r->body).bytes;
  if (bytes.size() != out.size()) {
    Fail(std::make_exception_ptr(Divergence(Divergence::Kind::kInputSize, icount,
                                            "the machine asked for " + std::to_string(out.size()) +
                                                " entropy bytes at icount " + std::to_string(icount) +
                                                " but the log holds " + std::to_string(bytes.size()))));
    return;
  }
  std::copy(bytes.begin(), bytes.end(), out.begin());
  Consume();
}

void ReplayingEnvironment::ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) {
  outputs_[0].Add(bytes);
  if (options_.console_out) options_.console_out(icount, bytes);
}

void ReplayingEnvironment::NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) {
  outputs_[1].Add(frame);
  if (options_.net_out) options_.net_out(icount, frame);
}

bool ReplayingEnvironment::WaitForInput(uint64_t icount, int64_t deadline_host_ns) {
  if (options_.stop_in_wait && options_.stop_in_wait(icount)) {
    const log::Record* r = PeekInput();
    if (r && r->icount == icount && r->kind_number() == static_cast<uint8_t>(log::RecordKind::kIdleWake)) Consume();
    return false;
  }
  if (deadline_host_ns != kWaitForever) return true;  // the machine does not use the answer
  const log::Record* r = Expect(icount, static_cast<uint8_t>(log::RecordKind::kIdleWake), "an idle wake-up");
  if (!r) return true;  // the machine stops at the failure without deciding anything
  const bool input = std::get<log::IdleWake>(r->body).input;
  Consume();
  return input;
}

}  // namespace vmrr
