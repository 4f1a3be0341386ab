// libFuzzer target for virtqueue processing: the input becomes a device choice, the queue
// registers a driver would program and the contents of guest RAM (descriptor table, rings,
// buffers); the device is then notified, its timers run, its input polled, and its state saved
// and restored. Any input must leave the host intact: no crash, no hang (every walk is
// bounded by the queue size), no allocation in proportion to a guest-supplied length.
//
// Input layout (little-endian): device u8 (0 rng, 1 blk, 2 net), flags u8, queue size u16,
// desc/avail/used offsets u16 each, then up to 64 KiB of guest RAM.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hv-hooks/devices/virtio/virtio_blk.h"
#include "hv-hooks/devices/virtio/virtio_net.h"
#include "hv-hooks/devices/virtio/virtio_rng.h"
#include "logformat/byte_order.h"

namespace {

using namespace vmrr;

constexpr uint64_t kRamSize = 64 * 1024;
constexpr size_t kHeaderSize = 10;

struct Icount : IcountSource {
  uint64_t value = 0;
  uint64_t icount() const override { return value; }
};

// A deterministic environment: entropy is a counter, one small frame is always waiting.
struct FuzzEnvironment : Environment {
  uint8_t counter = 0;
  int frames_left = 4;
  int64_t SampleTime(uint64_t) override { return 0; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t) override { return {}; }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>* frame) override {
    if (frames_left-- <= 0) return false;
    frame->assign(60, 0x42);
    return true;
  }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (uint8_t& b : out) b = counter++;
  }
  void ConsoleOutput(uint64_t, std::span<const uint8_t>) override {}
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t, int64_t) override { return false; }
};

// A 32 KiB image in memory whose host reads fail when the fuzzer's byte says so: the device
// must report the failure as a host error and never crash or complete the request.
class MemoryDisk : public DiskBackend {
 public:
  explicit MemoryDisk(bool fail) : fail_(fail), image_(64 * 512, 0x5c) {}
  uint64_t size_bytes() const override { return image_.size(); }
  bool Read(uint64_t offset, uint8_t* out, uint64_t len) override {
    if (fail_ || offset > image_.size() || len > image_.size() - offset) return false;
    std::memcpy(out, image_.data() + offset, len);
    return true;
  }
  bool Write(uint64_t, const uint8_t*, uint64_t) override { return false; }
  bool Flush() override { return true; }
  std::string error() const override { return "memory disk failed"; }

 private:
  bool fail_;
  std::vector<uint8_t> image_;
};

void Program(VirtioMmioDevice& dev, unsigned queue, uint16_t size, uint64_t desc, uint64_t avail,
             uint64_t used) {
  dev.Write(0x30, 4, queue);
  dev.Write(0x38, 4, size);
  dev.Write(0x80, 4, desc & 0xffffffff);
  dev.Write(0x84, 4, desc >> 32);
  dev.Write(0x90, 4, avail & 0xffffffff);
  dev.Write(0x94, 4, avail >> 32);
  dev.Write(0xa0, 4, used & 0xffffffff);
  dev.Write(0xa4, 4, used >> 32);
  dev.Write(0x44, 4, 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kHeaderSize) return 0;
  uint8_t device = data[0] % 3;
  uint8_t flags = data[1];
  uint16_t qsize = LoadLe16(data + 2);
  uint64_t desc = LoadLe16(data + 4), avail = LoadLe16(data + 6), used = LoadLe16(data + 8);
  if (flags & 0x08) desc |= 0xfff00000;  // ring outside RAM

  Icount ic;
  VirtualClock clock(ic, VirtualClock::Mode::kIcount);
  clock.Reset(0);
  GuestMemory mem(kRamSize);
  size_t ram_bytes = std::min<size_t>(size - kHeaderSize, kRamSize);
  mem.Write(0, data + kHeaderSize, ram_bytes);
  FuzzEnvironment env;

  std::unique_ptr<VirtioMmioDevice> dev;
  VirtioNet* net = nullptr;
  switch (device) {
    case 0: dev = std::make_unique<VirtioRng>(mem, clock, IrqLine(), env); break;
    case 1: {
      auto blk = std::make_unique<VirtioBlock>(mem, clock, IrqLine(),
                                               std::make_unique<MemoryDisk>((data[1] & 0x10) != 0), VirtioBlock::Options{});
      blk->set_host_error_handler([](const std::string&) {});
      dev = std::move(blk);
      break;
    }
    default: {
      auto n = std::make_unique<VirtioNet>(mem, clock, IrqLine(), env,
                                           std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1});
      net = n.get();
      dev = std::move(n);
      break;
    }
  }

  auto drive = [&] {
    dev->Write(0x70, 4, 0);
    dev->Write(0x70, 4, 3);
    dev->Write(0x24, 4, 1);
    dev->Write(0x20, 4, 1);
    dev->Write(0x70, 4, 0x0b);
    Program(*dev, 0, qsize, desc, avail, used);
    if (device == 2) Program(*dev, 1, qsize, desc ^ 0x400, avail ^ 0x400, used ^ 0x400);
    dev->Write(0x70, 4, 0x0f);
    dev->Write(0x50, 4, 0);
    if (flags & 0x01) dev->Write(0x50, 4, 1);
    if (net) net->PollInput();
    // Let every pending completion come due.
    for (int i = 0; i < 300 && dev->NextDeadlineNs() != kNoDeadline; ++i) {
      ic.value = clock.IcountForDeadline(dev->NextDeadlineNs());
      dev->RunTimers();
    }
    dev->Write(0x64, 4, 3);
  };
  drive();

  if (flags & 0x04) {
    // Snapshot round trip, then the fuzz bytes themselves as a (hostile) snapshot.
    std::vector<uint8_t> saved = SaveToBytes(*dev);
    LoadFromBytes(*dev, saved);
    if (SaveToBytes(*dev) != saved) __builtin_trap();
    try {
      LoadFromBytes(*dev, std::span<const uint8_t>(data + kHeaderSize, size - kHeaderSize));
    } catch (const StateError&) {
    }
    dev->Write(0x50, 4, 0);
    if (net) net->PollInput();
    dev->RunTimers();
  }
  if (flags & 0x02) drive();  // reset and run again over the RAM the device left behind
  return 0;
}
