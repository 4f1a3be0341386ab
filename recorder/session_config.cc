// Byte encoding of SessionConfig: "VMSC", u16 version, then varints/strings (logformat's
// primitives). New fields are appended; a reader ignores bytes after the fields it knows.
#include "recorder/session_config.h"

#include <cstring>

#include "logformat/byte_order.h"
#include "logformat/varint.h"

namespace vmrr {
namespace {

constexpr uint8_t kMagic[4] = {'V', 'M', 'S', 'C'};
constexpr uint64_t kMaxString = 4096;
constexpr uint64_t kMaxMemory = 1ull << 40;

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
    std::memcpy(out, p_, n);
    p_ += n;
  }
  bool AtEnd() const { return p_ == end_; }
  [[noreturn]] void Fail(const char* field, const char* what) {
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
  log::PutVarint(out, c.machine.memory_bytes);
  log::PutVarint(out, c.machine.clock_mode);
  log::PutVarint(out, c.machine.sample_interval);
  log::PutVarint(out, log::ZigZag(c.machine.icount_epoch_ns));
  log::PutVarint(out, c.machine.disk_image ? 1 : 0);
  if (c.machine.disk_image) PutString(out, *c.machine.disk_image);
  log::PutVarint(out, c.machine.disk_write_through);
  log::PutVarint(out, c.machine.net);
  log::PutVarint(out, c.machine.virtio_rng);
  PutString(out, c.kernel_path);
  log::PutVarint(out, c.digest_interval);
  log::PutVarint(out, c.checkpoint_interval);
  log::PutVarint(out, c.irq_records);
  log::PutVarint(out, c.machine_digest_interval);
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
  if (version == 0 || version > kSessionConfigVersion)
    p.Fail("version", "is newer than this build understands");
  SessionConfig c;
  c.machine.memory_bytes = p.Varint("memory size");
  if (c.machine.memory_bytes == 0 || c.machine.memory_bytes > kMaxMemory)
    p.Fail("memory size", "is 0 or above 1 TiB");
  uint64_t mode = p.Varint("clock mode");
  if (mode > 1) p.Fail("clock mode", "is neither icount (0) nor host (1)");
  c.machine.clock_mode = static_cast<uint8_t>(mode);
  c.machine.sample_interval = p.Varint("sample interval");
  if (c.machine.sample_interval == 0) p.Fail("sample interval", "is 0");
  c.machine.icount_epoch_ns = log::UnZigZag(p.Varint("icount epoch"));
  if (p.Bool("disk flag")) c.machine.disk_image = p.String("disk image path");
  c.machine.disk_write_through = p.Bool("disk write-through");
  c.machine.net = p.Bool("net");
  c.machine.virtio_rng = p.Bool("virtio-rng");
  c.kernel_path = p.String("kernel path");
  c.digest_interval = p.Varint("digest interval");
  c.checkpoint_interval = p.Varint("checkpoint interval");
  if (c.digest_interval == 0 || c.checkpoint_interval == 0)
    p.Fail("digest/checkpoint interval", "is 0");
  c.irq_records = p.Bool("irq records");
  c.machine_digest_interval = p.AtEnd() ? c.checkpoint_interval : p.Varint("machine digest interval");
  if (c.machine_digest_interval == 0) p.Fail("machine digest interval", "is 0");
  return c;
}

}  // namespace vmrr
