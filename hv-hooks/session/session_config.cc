// Byte encoding of SessionConfig: "VMSC", u16 version, the machine configuration as a
// length-prefixed MCFG section (machine_config.h, the encoding snapshots use too), then
// varints/strings (logformat's primitives). New fields are appended; a reader ignores bytes
// after the fields it knows.
#include "hv-hooks/session/session_config.h"

#include <cstring>

#include "logformat/byte_order.h"
#include "logformat/varint.h"

namespace vmrr {
namespace {

constexpr uint8_t kMagic[4] = {'V', 'M', 'S', 'C'};
constexpr uint64_t kMaxString = 4096;
constexpr uint64_t kMaxMachineConfig = 8192;

void PutString(std::vector<uint8_t>& out, const std::string& s) {
  log::PutVarint(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

class Parser {
 public:
  explicit Parser(std::span<const uint8_t> b) : p_(b.data()), begin_(b.data()), end_(b.data() + b.size()) {}
  uint64_t Varint(const char* field) {
    uint64_t v;
    if (!log::GetVarint(&p_, end_, &v)) Fail(field, "truncated or over-long varint");
    return v;
  }
  bool Bool(const char* field) {
    uint64_t v = Varint(field);
    if (v > 1) Fail(field, "not 0 or 1");
    return v == 1;
  }
  std::string String(const char* field) {
    uint64_t n = Varint(field);
    if (n > kMaxString) Fail(field, "longer than 4096 bytes");
    if (n > static_cast<uint64_t>(end_ - p_)) Fail(field, "runs past the end");
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  void Bytes(void* out, size_t n, const char* field) {
    if (n > static_cast<size_t>(end_ - p_)) Fail(field, "runs past the end");
    if (n == 0) return;  // p_ may be null (empty input): memcpy's arguments must not be
    std::memcpy(out, p_, n);
    p_ += n;
  }
  bool AtEnd() const { return p_ == end_; }
  [[noreturn]] void Fail(const char* field, const std::string& what) {
    throw SessionConfigError("machine configuration in the log header: " + std::string(field) + " " +
                             what + " (at byte " + std::to_string(p_ - begin_) + ")");
  }

 private:
  const uint8_t* p_;
  const uint8_t* begin_;
  const uint8_t* end_;
};

}  // namespace

std::vector<uint8_t> EncodeSessionConfig(const SessionConfig& c) {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kSessionConfigVersion & 0xff);
  out.push_back(kSessionConfigVersion >> 8);
  StateWriter machine;
  SaveMachineConfig(machine, c.machine);
  log::PutVarint(out, machine.bytes().size());
  out.insert(out.end(), machine.bytes().begin(), machine.bytes().end());
  PutString(out, c.kernel_path);
  log::PutVarint(out, c.digest_interval);
  log::PutVarint(out, c.checkpoint_interval);
  log::PutVarint(out, c.irq_records);
  log::PutVarint(out, c.machine_digest_interval);
  PutString(out, c.initrd_path);
  PutString(out, c.cmdline);
  return out;
}

SessionConfig DecodeSessionConfig(std::span<const uint8_t> bytes) {
  Parser p(bytes);
  uint8_t magic[4];
  p.Bytes(magic, 4, "magic");
  if (std::memcmp(magic, kMagic, 4) != 0) p.Fail("magic", "is not VMSC");
  uint8_t v[2];
  p.Bytes(v, 2, "version");
  uint16_t version = LoadLe16(v);
  if (version > kSessionConfigVersion) p.Fail("version", "is newer than this build understands");
  if (version < 2)
    p.Fail("version", "is older than 2, which this build needs (older logs' state digests were "
                      "computed over a CPU state without the TLB)");
  if (version == 2)
    p.Fail("version", "is 2, older than the 5 this build needs (version 2 logs' snapshots and "
                      "state digests are of a CPU state without the x87/SSE registers)");
  if (version == 3)
    p.Fail("version", "is 3, older than the 5 this build needs (version 3 logs ran on a machine "
                      "without the ACPI power registers and with a CPU that advertised no x87/SSE)");
  if (version < kSessionConfigVersion)
    p.Fail("version", "is 4, older than the 5 this build needs (version 4 logs ran on a machine "
                      "without QEMU's fw_cfg device)");
  SessionConfig c;
  const uint64_t machine_len = p.Varint("machine configuration length");
  if (machine_len > kMaxMachineConfig) p.Fail("machine configuration", "is longer than 8 KiB");
  std::vector<uint8_t> machine(machine_len);
  p.Bytes(machine.data(), machine.size(), "machine configuration");
  try {
    StateReader r(machine);
    c.machine = LoadMachineConfig(r);
    r.ExpectEnd();
  } catch (const StateError& e) {
    p.Fail("machine configuration", e.what());
  }
  c.kernel_path = p.String("kernel path");
  c.digest_interval = p.Varint("digest interval");
  c.checkpoint_interval = p.Varint("checkpoint interval");
  if (c.digest_interval == 0 || c.checkpoint_interval == 0)
    p.Fail("digest/checkpoint interval", "is 0");
  c.irq_records = p.Bool("irq records");
  c.machine_digest_interval = p.Varint("machine digest interval");
  if (c.machine_digest_interval == 0) p.Fail("machine digest interval", "is 0");
  c.initrd_path = p.String("initrd path");
  c.cmdline = p.String("kernel command line");
  return c;
}

}  // namespace vmrr
