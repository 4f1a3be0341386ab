// PrimaryLink over TCP against a hand-driven shadow: a link that breaks is opened again, and
// the stream is sent again from the count the shadow's Resume gives, piece by piece with the
// sync icounts it had; a Resume the primary cannot serve loses the shadow.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "recorder/output_commit.h"
#include "recorder/primary_link.h"
#include "replication/channel.h"
#include "replication/transport.h"

namespace vmrr {
namespace {

using link::Message;
using link::MessageType;
using link::SecureChannel;

link::Key TestKey() {
  link::Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(7 * i + 1);
  return k;
}

// The shadow's end of one connection, driven by the test.
struct FakeShadow {
  std::unique_ptr<link::Transport> t;
  SecureChannel ch{TestKey(), link::Role::kShadow};

  explicit FakeShadow(link::Listener& l) : t(l.Accept(5000)) {
    EXPECT_TRUE(t) << "the primary did not connect";
    if (!t) return;
    const auto hello = ch.Hello();
    EXPECT_TRUE(t->Send(hello.data(), hello.size(), 1000));
  }
  void Send(MessageType type, uint64_t icount, uint64_t aux) {
    const auto m = ch.Seal(type, icount, aux);
    ASSERT_TRUE(t->Send(m.data(), m.size(), 1000));
  }
  // The next message that is not a heartbeat (the hello is taken on the way).
  bool Next(Message* out, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    uint8_t buf[4096];
    for (;;) {
      for (;;) {
        const auto st = ch.Next(out);
        if (st == SecureChannel::Status::kRefused) {
          ADD_FAILURE() << ch.error();
          return false;
        }
        if (st == SecureChannel::Status::kNeedMore) break;
        if (out->type != MessageType::kHello && out->type != MessageType::kHeartbeat) return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      const ssize_t n = t->Receive(buf, sizeof buf, 20);
      if (n < 0) return false;
      ch.Feed(buf, static_cast<size_t>(n));
    }
  }
  // Reads until the primary's hello is in (so that Send may be used).
  void Establish() {
    Message m;
    uint8_t b;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!ch.established() && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = t->Receive(&b, 1, 20);
      ASSERT_GE(n, 0);
      ch.Feed(&b, static_cast<size_t>(n));
      ASSERT_NE(ch.Next(&m), SecureChannel::Status::kRefused) << ch.error();
    }
    ASSERT_TRUE(ch.established());
  }
};

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 31 * i);
  return v;
}

class Resume : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = "tcp:127.0.0.1:" + std::to_string(21000 + static_cast<int>(getpid() % 20000));
    listener_ = link::Listen(url_);
    options_.url = url_;
    options_.key = TestKey();
    options_.shadow_timeout_ms = 5000;
    std::thread connect([&] { primary_ = std::make_unique<PrimaryLink>(options_, console_); });
    shadow_ = std::make_unique<FakeShadow>(*listener_);
    connect.join();
    ASSERT_TRUE(primary_);
    shadow_->Establish();
  }
  // The link breaks (the shadow's end closes); the primary connects again.
  void Reconnect(uint64_t held_icount, uint64_t held_bytes) {
    shadow_.reset();
    shadow_ = std::make_unique<FakeShadow>(*listener_);
    shadow_->Establish();
    shadow_->Send(MessageType::kResume, held_icount, held_bytes);
  }

  std::string url_;
  std::unique_ptr<link::Listener> listener_;
  PrimaryLinkOptions options_;
  ConsoleCommitter console_{-1, false, 1 << 20};
  std::unique_ptr<PrimaryLink> primary_;
  std::unique_ptr<FakeShadow> shadow_;
};

TEST_F(Resume, TheStreamIsSentAgainFromTheShadowsCount) {
  const auto a = Pattern(1000, 1), b = Pattern(500, 2);
  primary_->SendLog(a, 10);
  primary_->SendLog(b, 20);
  Message m;
  ASSERT_TRUE(shadow_->Next(&m));
  EXPECT_EQ(m.type, MessageType::kLog);
  EXPECT_EQ(m.aux, 0u);
  EXPECT_EQ(m.payload, a);
  ASSERT_TRUE(shadow_->Next(&m));
  EXPECT_EQ(m.aux, 1000u);
  // The shadow acknowledges the first piece; the link breaks while it holds 1200 bytes (inside
  // the second piece): only the rest of that piece is sent again.
  shadow_->Send(MessageType::kAck, 10, 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Reconnect(10, 1200);
  ASSERT_TRUE(shadow_->Next(&m));
  EXPECT_EQ(m.type, MessageType::kLog);
  EXPECT_EQ(m.aux, 1200u);
  EXPECT_EQ(m.icount, 20u);
  EXPECT_EQ(m.payload, std::vector<uint8_t>(b.begin() + 200, b.end()));
  ASSERT_TRUE(shadow_->Next(&m));  // the sync icount now, with nothing more
  EXPECT_EQ(m.aux, 1500u);
  EXPECT_TRUE(m.payload.empty());
  EXPECT_EQ(m.icount, 20u);
  // New bytes follow on the new link, at the right offset.
  const auto c = Pattern(300, 3);
  primary_->SendLog(c, 30);
  ASSERT_TRUE(shadow_->Next(&m));
  EXPECT_EQ(m.aux, 1500u);
  EXPECT_EQ(m.payload, c);
  EXPECT_EQ(primary_->reconnects(), 1u);
  EXPECT_FALSE(primary_->lost());
}

TEST_F(Resume, AWholeStreamIsSentAgainToAShadowThatHoldsNothingAcknowledged) {
  const auto a = Pattern(4000, 4);
  primary_->SendLog(a, 5);
  Message m;
  ASSERT_TRUE(shadow_->Next(&m));
  Reconnect(0, 0);
  ASSERT_TRUE(shadow_->Next(&m));
  EXPECT_EQ(m.aux, 0u);
  EXPECT_EQ(m.payload, a);
  EXPECT_EQ(m.icount, 5u);
}

TEST_F(Resume, ACountThePrimaryCannotServeLosesTheShadow) {
  primary_->SendLog(Pattern(100, 5), 5);
  Message m;
  ASSERT_TRUE(shadow_->Next(&m));
  Reconnect(5, 5000);  // more than was ever sent
  for (int i = 0; i < 200 && !primary_->lost(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(primary_->lost());
  EXPECT_EQ(primary_->reconnects(), 0u);
}

}  // namespace
}  // namespace vmrr
