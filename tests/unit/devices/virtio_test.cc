// virtio-mmio transport and device tests against the virtio 1.x specification (4.2.2 register
// layout, 2.7 split virtqueues, 5.1 net, 5.2 block, 5.4 entropy), including hostile queues.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "hv-hooks/devices/virtio/virtio_blk.h"
#include "hv-hooks/host/file_disk_backend.h"
#include "hv-hooks/devices/virtio/virtio_net.h"
#include "hv-hooks/devices/virtio/virtio_rng.h"
#include "test_support.h"

namespace vmrr {
namespace {

constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

// A minimal virtio driver working directly on guest RAM, as a guest's driver would.
class Driver {
 public:
  Driver(GuestMemory& mem, VirtioMmioDevice& dev) : mem_(mem), dev_(dev) {}
  void W(uint64_t reg, uint32_t v) { dev_.Write(reg, 4, v); }
  uint32_t R(uint64_t reg) { return static_cast<uint32_t>(dev_.Read(reg, 4)); }
  static uint64_t Desc(unsigned q) { return 0x10000 * (q + 1); }
  static uint64_t Avail(unsigned q) { return Desc(q) + 0x1000; }
  static uint64_t Used(unsigned q) { return Desc(q) + 0x2000; }

  void Init(unsigned queues, uint32_t features_lo = 0) {
    W(0x70, 0);
    W(0x70, 1);
    W(0x70, 3);
    W(0x24, 0);
    W(0x20, features_lo);
    W(0x24, 1);
    W(0x20, 1);  // VIRTIO_F_VERSION_1
    W(0x70, 0x0b);
    ASSERT_EQ(R(0x70) & 0x08, 0x08u) << "device accepted the features";
    for (unsigned q = 0; q < queues; ++q) {
      W(0x30, q);
      W(0x38, kSize);
      W(0x80, static_cast<uint32_t>(Desc(q)));
      W(0x84, 0);
      W(0x90, static_cast<uint32_t>(Avail(q)));
      W(0x94, 0);
      W(0xa0, static_cast<uint32_t>(Used(q)));
      W(0xa4, 0);
      W(0x44, 1);
    }
    W(0x70, 0x0f);
  }
  void SetDesc(unsigned q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
               uint16_t next) {
    uint8_t d[16];
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
    mem_.Write(Desc(q) + 16ull * i, d, 16);
  }
  void Publish(unsigned q, uint16_t head) {
    uint16_t idx = avail_idx_[q];
    mem_.Write(Avail(q) + 4 + 2ull * (idx % kSize), &head, 2);
    ++idx;
    mem_.Write(Avail(q) + 2, &idx, 2);
    avail_idx_[q] = idx;
  }
  void SetAvailIdx(unsigned q, uint16_t idx) { mem_.Write(Avail(q) + 2, &idx, 2); }
  void Notify(unsigned q) { W(0x50, q); }
  uint16_t UsedIdx(unsigned q) {
    uint16_t v = 0;
    mem_.Read(Used(q) + 2, &v, 2);
    return v;
  }
  std::pair<uint32_t, uint32_t> UsedElem(unsigned q, uint16_t i) {
    uint32_t e[2];
    mem_.Read(Used(q) + 4 + 8ull * (i % kSize), e, 8);
    return {e[0], e[1]};
  }

  static constexpr uint16_t kSize = 16;

 private:
  GuestMemory& mem_;
  VirtioMmioDevice& dev_;
  uint16_t avail_idx_[2] = {};
};

class VirtioRngTest : public ::testing::Test {
 protected:
  VirtioRngTest()
      : mem(1 << 20), clock(ic, VirtualClock::Mode::kIcount),
        rng(mem, clock, IrqLine(&irqs, 5), env), drv(mem, rng) {
    clock.Reset(0);
  }
  test::FakeIcount ic;
  GuestMemory mem;
  VirtualClock clock;
  test::FakeEnvironment env;
  test::IrqRecorder irqs;
  VirtioRng rng;
  Driver drv;
};

TEST_F(VirtioRngTest, IdentificationRegisters) {
  EXPECT_EQ(drv.R(0x000), 0x74726976u);
  EXPECT_EQ(drv.R(0x004), 2u) << "virtio-mmio version 2 (virtio 1.x)";
  EXPECT_EQ(drv.R(0x008), 4u) << "entropy device";
  drv.W(0x14, 1);
  EXPECT_EQ(drv.R(0x010) & 1, 1u) << "VIRTIO_F_VERSION_1 offered";
  drv.W(0x30, 0);
  EXPECT_EQ(drv.R(0x034), 256u);
  drv.W(0x30, 1);
  EXPECT_EQ(drv.R(0x034), 0u) << "queue 1 does not exist";
  EXPECT_EQ(rng.Read(0x000, 2), 0u) << "non-32-bit register access is not defined";
}

TEST_F(VirtioRngTest, FeaturesWithoutVersion1AreRefused) {
  drv.W(0x70, 3);
  drv.W(0x24, 1);
  drv.W(0x20, 0);
  drv.W(0x70, 0x0b);
  EXPECT_EQ(drv.R(0x70) & 0x08, 0u);
  drv.W(0x70, 0);
  EXPECT_EQ(drv.R(0x70), 0u) << "writing 0 resets";
}

TEST_F(VirtioRngTest, FillsBufferFromEnvironmentAndInterrupts) {
  drv.Init(1);
  drv.SetDesc(0, 3, 0x80000, 32, kWrite, 0);
  drv.Publish(0, 3);
  drv.Notify(0);
  EXPECT_EQ(drv.UsedIdx(0), 1);
  EXPECT_EQ(drv.UsedElem(0, 0), std::make_pair(3u, 32u));
  uint8_t got[32];
  mem.Read(0x80000, got, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(drv.R(0x60), 1u) << "used buffer notification";
  EXPECT_TRUE(irqs.level[5]);
  drv.W(0x64, 1);
  EXPECT_FALSE(irqs.level[5]);
  EXPECT_TRUE(mem.IsDirty(0x80000 >> 12)) << "DMA goes through GuestMemory::Write";
}

TEST_F(VirtioRngTest, LargeRequestIsServedShortAndNoInterruptFlagHonoured) {
  drv.Init(1);
  uint16_t no_interrupt = 1;
  mem.Write(Driver::Avail(0), &no_interrupt, 2);
  drv.SetDesc(0, 0, 0x80000, 100000, kWrite, 0);
  drv.Publish(0, 0);
  drv.Notify(0);
  EXPECT_EQ(drv.UsedElem(0, 0).second, VirtioRng::kMaxBytesPerRequest);
  EXPECT_EQ(drv.R(0x60), 0u);
}

TEST_F(VirtioRngTest, NotifyBeforeDriverOkDoesNothing) {
  drv.SetDesc(0, 0, 0x80000, 8, kWrite, 0);
  drv.Publish(0, 0);
  drv.Notify(0);
  EXPECT_EQ(env.entropy_calls, 0u);
}

TEST_F(VirtioRngTest, DescriptorLoopMarksNeedsReset) {
  drv.Init(1);
  drv.SetDesc(0, 0, 0x80000, 8, kWrite | kNext, 1);
  drv.SetDesc(0, 1, 0x80010, 8, kWrite | kNext, 0);
  drv.Publish(0, 0);
  drv.Notify(0);
  EXPECT_EQ(drv.R(0x70) & 0x40, 0x40u) << "DEVICE_NEEDS_RESET";
  EXPECT_EQ(drv.R(0x60) & 2, 2u) << "configuration change interrupt";
  EXPECT_EQ(drv.UsedIdx(0), 0);
  // Dead until reset: a good request is ignored.
  drv.SetDesc(0, 2, 0x80000, 8, kWrite, 0);
  drv.Publish(0, 2);
  drv.Notify(0);
  EXPECT_EQ(drv.UsedIdx(0), 0);
  drv.W(0x70, 0);
  EXPECT_EQ(drv.R(0x70), 0u);
  EXPECT_TRUE(rng.broken_reason().empty());
}

TEST_F(VirtioRngTest, HostileIndicesAreRefused) {
  struct Case {
    const char* name;
    std::function<void(Driver&)> setup;
  } cases[] = {
      {"head beyond queue size", [](Driver& d) { d.Publish(0, 200); }},
      {"next beyond queue size", [](Driver& d) {
         d.SetDesc(0, 0, 0x80000, 8, kWrite | kNext, 999);
         d.Publish(0, 0);
       }},
      {"available index jump", [](Driver& d) { d.SetAvailIdx(0, 1000); }},
      {"indirect without negotiation", [](Driver& d) {
         d.SetDesc(0, 0, 0x80000, 16, kIndirect, 0);
         d.Publish(0, 0);
       }},
      {"readable after writable", [](Driver& d) {
         d.SetDesc(0, 0, 0x80000, 8, kWrite | kNext, 1);
         d.SetDesc(0, 1, 0x80010, 8, 0, 0);
         d.Publish(0, 0);
       }},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    GuestMemory fresh(1 << 20);
    VirtioRng dev(fresh, clock, IrqLine(&irqs, 5), env);
    Driver d(fresh, dev);
    d.Init(1);
    c.setup(d);
    d.Notify(0);
    EXPECT_EQ(dev.status() & 0x40, 0x40) << dev.broken_reason();
    EXPECT_EQ(d.UsedIdx(0), 0);
  }
}

TEST_F(VirtioRngTest, BufferOutsideRamIsCompletedEmpty) {
  drv.Init(1);
  drv.SetDesc(0, 0, 0xfff00000, 64, kWrite, 0);
  drv.Publish(0, 0);
  drv.Notify(0);
  EXPECT_EQ(drv.UsedElem(0, 0), std::make_pair(0u, 0u));
  EXPECT_EQ(rng.status() & 0x40, 0);
  EXPECT_EQ(env.entropy_calls, 0u) << "no entropy is consumed for an unusable buffer";
}

TEST_F(VirtioRngTest, RingOutsideRamMarksNeedsReset) {
  drv.Init(0);
  drv.W(0x30, 0);
  drv.W(0x38, 16);
  drv.W(0x80, 0xfff00000);
  drv.W(0x44, 1);
  drv.W(0x70, 0x0f);
  drv.Notify(0);
  EXPECT_EQ(rng.status() & 0x40, 0x40);
}

TEST_F(VirtioRngTest, AnyRegisterValuesSurviveSnapshot) {
  // Regression (fuzzer): state the driver can write must load back.
  drv.W(0x24, 0);
  drv.W(0x20, 0xffffffff);  // features never offered
  drv.W(0x30, 0);
  drv.W(0x38, 3072);        // queue size beyond QueueNumMax
  std::vector<uint8_t> saved = SaveToBytes(rng);
  LoadFromBytes(rng, saved);
  EXPECT_EQ(SaveToBytes(rng), saved);
}

TEST_F(VirtioRngTest, SaveMutateRestore) {
  drv.Init(1);
  test::ExpectSaveMutateRestore(rng, [&] {
    drv.SetDesc(0, 0, 0x80000, 8, kWrite, 0);
    drv.Publish(0, 0);
    drv.Notify(0);
  });
  EXPECT_EQ(rng.queue(0).next_avail, 0);
}

// ---- block ----------------------------------------------------------------------------

class VirtioBlkTest : public ::testing::Test {
 protected:
  VirtioBlkTest() : mem(1 << 20), clock(ic, VirtualClock::Mode::kIcount) {
    clock.Reset(0);
    char tmpl[] = "/tmp/vmrr_blk_test_XXXXXX";
    int fd = mkstemp(tmpl);
    path = tmpl;
    image.resize(64 * 512);
    for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + i / 512);
    EXPECT_EQ(write(fd, image.data(), image.size()), static_cast<ssize_t>(image.size()));
    close(fd);
  }
  ~VirtioBlkTest() override { std::remove(path.c_str()); }

  std::unique_ptr<VirtioBlock> Make(bool read_only = false) {
    VirtioBlock::Options o;
    o.read_only = read_only;
    return std::make_unique<VirtioBlock>(mem, clock, IrqLine(&irqs, 6), FileDiskBackend::Open(path, false), o);
  }
  // Builds header / data / status descriptors 0,1,2 and publishes them.
  void Request(Driver& d, uint32_t type, uint64_t sector, uint32_t data_len, bool data_write) {
    uint8_t header[16] = {};
    std::memcpy(header, &type, 4);
    std::memcpy(header + 8, &sector, 8);
    mem.Write(0x70000, header, 16);
    uint8_t status = 0xff;
    mem.Write(0x70100, &status, 1);
    if (data_len) {
      d.SetDesc(0, 0, 0x70000, 16, kNext, 1);
      d.SetDesc(0, 1, 0x80000, data_len, static_cast<uint16_t>(kNext | (data_write ? kWrite : 0)), 2);
    } else {
      d.SetDesc(0, 0, 0x70000, 16, kNext, 2);
    }
    d.SetDesc(0, 2, 0x70100, 1, kWrite, 0);
    d.Publish(0, 0);
    d.Notify(0);
  }
  uint8_t Status() {
    uint8_t s;
    mem.Read(0x70100, &s, 1);
    return s;
  }
  void RunTo(VirtioBlock& b) {
    ic.value = clock.IcountForDeadline(b.NextDeadlineNs());
    b.RunTimers();
  }
  std::vector<uint8_t> ReadFile() {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }

  test::FakeIcount ic;
  GuestMemory mem;
  VirtualClock clock;
  test::IrqRecorder irqs;
  std::string path;
  std::vector<uint8_t> image;
};

TEST_F(VirtioBlkTest, ConfigReportsCapacity) {
  auto blk = Make();
  EXPECT_EQ(blk->Read(0x100, 8), 64u);
  EXPECT_EQ(blk->Read(0x008, 4), 2u);
  EXPECT_EQ(blk->Read(0x114, 4), 512u) << "blk_size";
}

TEST_F(VirtioBlkTest, MissingImageIsATypedError) {
  EXPECT_THROW(FileDiskBackend::Open("/nonexistent/disk.img", false), BlockImageError);
  EXPECT_THROW(FileDiskBackend::Open("/tmp", false), BlockImageError) << "not a regular file";
}

// A disk whose host reads fail after `good_reads` successful ones.
class FailingDisk : public DiskBackend {
 public:
  explicit FailingDisk(int good_reads) : good_reads_(good_reads) {}
  uint64_t size_bytes() const override { return 64 * 512; }
  bool Read(uint64_t, uint8_t* out, uint64_t len) override {
    if (good_reads_-- <= 0) return false;
    std::memset(out, 0x5a, len);
    return true;
  }
  bool Write(uint64_t, const uint8_t*, uint64_t) override { return false; }
  bool Flush() override { return false; }
  std::string error() const override { return "disk image 'failing': read failed: Input/output error"; }

 private:
  int good_reads_;
};

TEST_F(VirtioBlkTest, AHostReadFailureIsAHostErrorNeverAGuestVisibleIoError) {
  VirtioBlock blk(mem, clock, IrqLine(&irqs, 6), std::make_unique<FailingDisk>(0), {});
  std::vector<std::string> host_errors;
  blk.set_host_error_handler([&](const std::string& m) { host_errors.push_back(m); });
  Driver d(mem, blk);
  d.Init(1);
  Request(d, 0, 3, 1024, true);
  ASSERT_EQ(host_errors.size(), 1u);
  EXPECT_NE(host_errors[0].find("Input/output error"), std::string::npos);
  EXPECT_EQ(Status(), 0xff) << "no status written: the guest must not see an I/O error";
  EXPECT_EQ(blk.NextDeadlineNs(), kNoDeadline) << "and the request never completes";
  EXPECT_EQ(irqs.rises[6], 0);
  // A request that does not touch the host still works (the machine, not the device, stops).
  VirtioBlock ok(mem, clock, IrqLine(&irqs, 6), std::make_unique<FailingDisk>(1), {});
  ok.set_host_error_handler([&](const std::string& m) { host_errors.push_back(m); });
  Driver d2(mem, ok);
  d2.Init(1);
  Request(d2, 0, 3, 512, true);
  EXPECT_EQ(host_errors.size(), 1u);
  EXPECT_EQ(Status(), 0);
}

TEST_F(VirtioBlkTest, ReadCompletesAtDeterministicVirtualTime) {
  auto blk = Make();
  Driver d(mem, *blk);
  d.Init(1);
  ic.value = 1000;
  Request(d, 0, 3, 1024, true);
  EXPECT_EQ(d.UsedIdx(0), 0) << "not complete until its virtual time";
  uint64_t due = blk->NextDeadlineNs();
  EXPECT_EQ(due, 1000 + VirtioBlock::kLatencyNs + 16 + 1024 + 1);
  RunTo(*blk);
  EXPECT_EQ(d.UsedIdx(0), 1);
  EXPECT_EQ(d.UsedElem(0, 0).second, 1025u) << "data plus status byte written";
  EXPECT_EQ(Status(), 0);
  std::vector<uint8_t> got(1024);
  mem.Read(0x80000, got.data(), 1024);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), image.begin() + 3 * 512));
  EXPECT_TRUE(irqs.level[6]);
}

TEST_F(VirtioBlkTest, WritesGoToOverlayNotTheBaseImage) {
  auto blk = Make();
  Driver d(mem, *blk);
  d.Init(1);
  std::vector<uint8_t> data(512, 0xab);
  mem.Write(0x80000, data.data(), 512);
  Request(d, 1, 5, 512, false);
  RunTo(*blk);
  EXPECT_EQ(Status(), 0);
  EXPECT_EQ(ReadFile(), image) << "base image untouched";
  EXPECT_EQ(blk->overlay_blocks(), 1u);
  std::vector<uint8_t> zero(1024, 0);
  mem.Write(0x80000, zero.data(), 1024);
  Request(d, 0, 4, 1024, true);
  RunTo(*blk);
  std::vector<uint8_t> got(1024);
  mem.Read(0x80000, got.data(), 1024);
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 512, image.begin() + 4 * 512));
  EXPECT_TRUE(std::all_of(got.begin() + 512, got.end(), [](uint8_t b) { return b == 0xab; }));
}

TEST_F(VirtioBlkTest, ExportedImageIsTheBaseWithTheGuestsWrites) {
  auto blk = Make();
  Driver d(mem, *blk);
  d.Init(1);
  std::vector<uint8_t> data(1024, 0x5c);
  mem.Write(0x80000, data.data(), 1024);
  Request(d, 1, 7, 1024, false);  // sectors 7-8: across the first two overlay blocks
  RunTo(*blk);
  ASSERT_EQ(Status(), 0);
  const std::string out = path + ".out";
  std::string error;
  ASSERT_TRUE(blk->ExportImage(out, &error)) << error;
  std::vector<uint8_t> want = image;
  std::fill(want.begin() + 7 * 512, want.begin() + 9 * 512, 0x5c);
  std::ifstream f(out, std::ios::binary);
  const std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, want);
  EXPECT_EQ(ReadFile(), image) << "base image untouched";
  std::remove(out.c_str());
  EXPECT_FALSE(blk->ExportImage("/nonexistent-dir/x.img", &error));
  EXPECT_NE(error.find("/nonexistent-dir/x.img"), std::string::npos) << error;
}

TEST_F(VirtioBlkTest, ErrorsAndUnsupportedRequests) {
  auto blk = Make(/*read_only=*/true);
  Driver d(mem, *blk);
  d.Init(1);
  Request(d, 0, 63, 1024, true);  // runs past the end
  RunTo(*blk);
  EXPECT_EQ(Status(), 1) << "IOERR";
  Request(d, 1, 0, 512, false);
  RunTo(*blk);
  EXPECT_EQ(Status(), 1) << "write to a read-only disk";
  Request(d, 11, 0, 0, false);  // DISCARD, not offered
  RunTo(*blk);
  EXPECT_EQ(Status(), 2) << "UNSUPP";
  Request(d, 8, 0, 20, true);  // GET_ID
  RunTo(*blk);
  EXPECT_EQ(Status(), 0);
  char id[20] = {};
  mem.Read(0x80000, id, 20);
  EXPECT_STREQ(id, "vmrr-virtio-blk");
  Request(d, 4, 0, 0, false);  // FLUSH
  RunTo(*blk);
  EXPECT_EQ(Status(), 0);
}

TEST_F(VirtioBlkTest, RequestWithoutStatusByteNeedsReset) {
  auto blk = Make();
  Driver d(mem, *blk);
  d.Init(1);
  d.SetDesc(0, 0, 0x70000, 16, 0, 0);
  d.Publish(0, 0);
  d.Notify(0);
  EXPECT_EQ(blk->status() & 0x40, 0x40);
}

TEST_F(VirtioBlkTest, SaveMutateRestoreKeepsOverlayAndPending) {
  auto blk = Make();
  Driver d(mem, *blk);
  d.Init(1);
  std::vector<uint8_t> data(512, 0x5a);
  mem.Write(0x80000, data.data(), 512);
  Request(d, 1, 9, 512, false);
  test::ExpectSaveMutateRestore(*blk, [&] {
    RunTo(*blk);
    Request(d, 1, 20, 512, false);
  });
  EXPECT_EQ(blk->overlay_blocks(), 1u);
  EXPECT_NE(blk->NextDeadlineNs(), kNoDeadline) << "the restored request is still pending";
}

// ---- net ------------------------------------------------------------------------------

class VirtioNetTest : public ::testing::Test {
 protected:
  VirtioNetTest()
      : mem(1 << 20), clock(ic, VirtualClock::Mode::kIcount),
        net(mem, clock, IrqLine(&irqs, 7), env, {0x52, 0x54, 0, 0x12, 0x34, 0x56}),
        drv(mem, net) {
    clock.Reset(0);
  }
  test::FakeIcount ic;
  GuestMemory mem;
  VirtualClock clock;
  test::FakeEnvironment env;
  test::IrqRecorder irqs;
  VirtioNet net;
  Driver drv;
};

TEST_F(VirtioNetTest, ConfigHasMacAndLinkUp) {
  EXPECT_EQ(net.Read(0x008, 4), 1u);
  EXPECT_EQ(net.Read(0x100, 4), 0x12005452u);
  EXPECT_EQ(net.Read(0x104, 2), 0x5634u);
  EXPECT_EQ(net.Read(0x106, 2), 1u);
  EXPECT_EQ(net.Read(0x010, 4) & (1u << 5), 1u << 5) << "VIRTIO_NET_F_MAC";
}

TEST_F(VirtioNetTest, TransmitStripsHeader) {
  drv.Init(2, (1u << 5) | (1u << 16));
  uint8_t buf[12 + 4] = {};
  buf[12] = 0xde, buf[13] = 0xad, buf[14] = 0xbe, buf[15] = 0xef;
  mem.Write(0x80000, buf, sizeof buf);
  drv.SetDesc(1, 0, 0x80000, 12, kNext, 1);
  drv.SetDesc(1, 1, 0x8000c, 4, 0, 0);
  drv.Publish(1, 0);
  drv.Notify(1);
  ASSERT_EQ(env.net_out.size(), 1u);
  EXPECT_EQ(env.net_out[0], std::vector<uint8_t>({0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(drv.UsedIdx(1), 1);
}

TEST_F(VirtioNetTest, ReceiveOnlyIntoPostedBuffers) {
  drv.Init(2);
  env.net_in.push_back({1, 2, 3, 4, 5});
  net.PollInput();
  EXPECT_EQ(env.net_in.size(), 1u) << "no buffer posted: the frame waits in the environment";
  drv.SetDesc(0, 0, 0x90000, 2048, kWrite, 0);
  drv.Publish(0, 0);
  drv.Notify(0);
  EXPECT_TRUE(net.WantsInput());
  net.PollInput();
  EXPECT_TRUE(env.net_in.empty());
  EXPECT_EQ(drv.UsedElem(0, 0), std::make_pair(0u, 17u));
  uint8_t got[17];
  mem.Read(0x90000, got, 17);
  EXPECT_EQ(got[10], 1) << "num_buffers";
  EXPECT_EQ(got[12], 1);
  EXPECT_EQ(got[16], 5);
  EXPECT_TRUE(irqs.level[7]);
}

TEST_F(VirtioNetTest, SaveMutateRestore) {
  drv.Init(2);
  test::ExpectSaveMutateRestore(net, [&] {
    drv.SetDesc(0, 0, 0x90000, 2048, kWrite, 0);
    drv.Publish(0, 0);
    env.net_in.push_back({9});
    net.PollInput();
  });
}

}  // namespace
}  // namespace vmrr
