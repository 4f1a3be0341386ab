// ReplayingEnvironment: hands the machine its logged inputs at their exact icounts.
#include "replayer/replaying_environment.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vmrr {
namespace {

bool IsInputKind(uint8_t kind) {
  return kind == static_cast<uint8_t>(log::RecordKind::kTimeSample) ||
         kind == static_cast<uint8_t>(log::RecordKind::kConsoleIn) ||
         kind == static_cast<uint8_t>(log::RecordKind::kNetRx) ||
         kind == static_cast<uint8_t>(log::RecordKind::kEntropy);
}

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

const log::Record* ReplayingEnvironment::PeekInput() {
  return Ahead(0);
}

const log::Record* ReplayingEnvironment::Ahead(size_t i) {
  while (ahead_.size() <= i && !source_done_) {
    log::Record r;
    if (!inputs_.Next(&r)) {
      source_done_ = true;
      break;
    }
    if (IsInputKind(r.kind_number())) ahead_.push_back(std::move(r));
  }
  return i < ahead_.size() ? &ahead_[i] : nullptr;
}

void ReplayingEnvironment::Consume() {
  ahead_.pop_front();
  ++inputs_consumed_;
}

void ReplayingEnvironment::CheckNoInputBefore(uint64_t icount) {
  const log::Record* r = PeekInput();
  if (r && r->icount < icount)
    throw Divergence(Divergence::Kind::kMissedInput, r->icount,
                     "the log's " + Describe(*r) + " was never asked for (replay reached icount " +
                         std::to_string(icount) + ")");
}

const log::Record* ReplayingEnvironment::Expect(uint64_t icount, uint8_t kind, const char* what) {
  const log::Record* r = PeekInput();
  if (!r) {
    std::string msg = std::string("the machine asked for ") + what + " at icount " +
                      std::to_string(icount) + " after the last input of the log";
    if (options_.log_complete) throw Divergence(Divergence::Kind::kInput, icount, msg);
    throw LogExhausted(icount, msg);
  }
  if (r->icount < icount)
    throw Divergence(Divergence::Kind::kMissedInput, r->icount,
                     "the log's " + Describe(*r) + " was never asked for (the machine asked for " +
                         what + " at icount " + std::to_string(icount) + ")");
  if (r->icount != icount || r->kind_number() != kind)
    throw Divergence(Divergence::Kind::kInput, icount,
                     std::string("the machine asked for ") + what + " at icount " +
                         std::to_string(icount) + " but the log's next input is " + Describe(*r));
  return r;
}

int64_t ReplayingEnvironment::SampleTime(uint64_t icount) {
  const log::Record* r = Expect(icount, static_cast<uint8_t>(log::RecordKind::kTimeSample), "a time sample");
  int64_t t = std::get<log::TimeSample>(r->body).host_ns;
  Consume();
  return t;
}

std::vector<uint8_t> ReplayingEnvironment::PollConsoleInput(uint64_t icount, size_t max_bytes) {
  const log::Record* r = PeekInput();
  if (!r) return {};
  if (r->icount < icount) CheckNoInputBefore(icount);
  if (r->icount != icount || r->kind_number() != static_cast<uint8_t>(log::RecordKind::kConsoleIn))
    return {};
  std::vector<uint8_t> bytes = std::get<log::ConsoleIn>(r->body).bytes;
  if (bytes.size() > max_bytes)
    throw Divergence(Divergence::Kind::kInputSize, icount,
                     "the log's ConsoleIn at icount " + std::to_string(icount) + " holds " +
                         std::to_string(bytes.size()) + " bytes but the console takes " +
                         std::to_string(max_bytes));
  Consume();
  return bytes;
}

bool ReplayingEnvironment::PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) {
  const log::Record* r = PeekInput();
  if (!r) return false;
  if (r->icount < icount) CheckNoInputBefore(icount);
  if (r->icount != icount || r->kind_number() != static_cast<uint8_t>(log::RecordKind::kNetRx))
    return false;
  *frame = std::get<log::NetRx>(r->body).frame;
  Consume();
  return true;
}

void ReplayingEnvironment::GetEntropy(uint64_t icount, std::span<uint8_t> out) {
  const log::Record* r = Expect(icount, static_cast<uint8_t>(log::RecordKind::kEntropy), "entropy");
  const auto& bytes = std::get<log::Entropy>(r->body).bytes;
  if (bytes.size() != out.size())
    throw Divergence(Divergence::Kind::kInputSize, icount,
                     "the machine asked for " + std::to_string(out.size()) +
                         " entropy bytes at icount " + std::to_string(icount) + " but the log holds " +
                         std::to_string(bytes.size()));
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

bool ReplayingEnvironment::WaitForInput(int64_t) {
  // The machine ends a run as "halted forever" when an idle wait with nothing scheduled
  // returns false, so the answer must be the recording's. A live wait returned false only
  // if nothing ever arrived: then the log ends there, at most with the time sample taken
  // right after the wait. Anything more in a complete log means input did arrive.
  if (options_.on_wait) options_.on_wait();
  if (!options_.log_complete) return true;
  // The recorder logs something at the icount of every wake that reported input (a time
  // sample, or the console poll that follows, even if empty).
  const log::Record* next = Ahead(0);
  if (!next) return false;
  if (next->kind_number() == static_cast<uint8_t>(log::RecordKind::kTimeSample) && !Ahead(1)) return false;
  return !options_.icount || next->icount == options_.icount();
}

}  // namespace vmrr
