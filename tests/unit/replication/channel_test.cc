// SecureChannel, key files and transports: known answers from an independent implementation
// (Python's hmac/hashlib: HMAC-SHA-512 truncated to 32 bytes, keyed BLAKE2b-256), and every
// kind of bad message refused: forged, damaged, truncated, reordered, replayed, reflected,
// from another session or key, oversized.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "replication/channel.h"
#include "replication/key_file.h"
#include "replication/transport.h"

namespace vmrr::link {
namespace {

using Status = SecureChannel::Status;

Key TestKey() {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i);
  return k;
}

SecureChannel::Nonce Fill(uint8_t v) {
  SecureChannel::Nonce n;
  n.fill(v);
  return n;
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// A primary and a shadow that have exchanged hellos.
struct Pair {
  SecureChannel::Nonce np = Fill(0x11), ns = Fill(0x22);
  SecureChannel primary{TestKey(), Role::kPrimary, &np};
  SecureChannel shadow{TestKey(), Role::kShadow, &ns};
  Pair() {
    Message m;
    auto hp = primary.Hello();
    auto hs = shadow.Hello();
    shadow.Feed(hp.data(), hp.size());
    primary.Feed(hs.data(), hs.size());
    EXPECT_EQ(shadow.Next(&m), Status::kMessage);
    EXPECT_EQ(primary.Next(&m), Status::kMessage);
  }
};

Status FeedAll(SecureChannel& c, const std::vector<uint8_t>& bytes, Message* m) {
  c.Feed(bytes.data(), bytes.size());
  return c.Next(m);
}

TEST(Channel, KnownAnswersFromAnIndependentImplementation) {
  Pair p;
  const std::vector<uint8_t> hello = p.primary.Hello();
  ASSERT_EQ(hello.size(), kMessageHeaderSize + kNonceSize + kMacSize);
  EXPECT_EQ(Hex(hello.data(), 8), "564c4e4b01010000");  // VLNK, version 1, hello, primary
  EXPECT_EQ(Hex(hello.data() + hello.size() - 32, 32),
            "1ff7cac7c5a275164b2ecbcec0516368625fcefd79d60e4d6381357aae8f4320");
  const uint8_t abc[] = {'a', 'b', 'c'};
  const std::vector<uint8_t> log = p.primary.Seal(MessageType::kLog, 12345, 0, abc);
  EXPECT_EQ(Hex(log.data() + log.size() - 32, 32), "9f0cb2774f1aa3161d79f9a0e444872f9d01a441e88e451dcaa96c369f58ec4b");
  const std::vector<uint8_t> ack = p.shadow.Seal(MessageType::kAck, 777, 999);
  EXPECT_EQ(Hex(ack.data() + ack.size() - 32, 32), "f769309a7d866cbea0637b56ce4e83a8750516e66e1f85a125dccf343541f34c");
  Message m;
  ASSERT_EQ(FeedAll(p.shadow, log, &m), Status::kMessage);
  EXPECT_EQ(m.type, MessageType::kLog);
  EXPECT_EQ(m.seq, 1u);
  EXPECT_EQ(m.icount, 12345u);
  EXPECT_EQ(m.payload, std::vector<uint8_t>(abc, abc + 3));
  ASSERT_EQ(FeedAll(p.primary, ack, &m), Status::kMessage);
  EXPECT_EQ(m.type, MessageType::kAck);
  EXPECT_EQ(m.icount, 777u);
  EXPECT_EQ(m.aux, 999u);
}

TEST(Channel, MessagesSurviveAnySplitOfTheStream) {
  Pair p;
  std::mt19937 rng(7);
  std::vector<uint8_t> stream;
  std::vector<std::vector<uint8_t>> payloads;
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> pl(rng() % 3000);
    for (auto& b : pl) b = static_cast<uint8_t>(rng());
    auto m = p.primary.Seal(MessageType::kLog, static_cast<uint64_t>(i), 0, pl);
    stream.insert(stream.end(), m.begin(), m.end());
    payloads.push_back(std::move(pl));
  }
  size_t pos = 0, got = 0;
  Message m;
  while (pos < stream.size()) {
    const size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % 5000);
    p.shadow.Feed(stream.data() + pos, n);
    pos += n;
    Status st;
    while ((st = p.shadow.Next(&m)) == Status::kMessage) {
      ASSERT_LT(got, payloads.size());
      EXPECT_EQ(m.payload, payloads[got]);
      EXPECT_EQ(m.icount, got);
      ++got;
    }
    ASSERT_EQ(st, Status::kNeedMore);
  }
  EXPECT_EQ(got, payloads.size());
}

// Every single-bit flip anywhere in a message is refused (after at most the bytes a longer
// stated length asks for), and never handed out as a message.
TEST(Channel, EveryDamagedByteIsRefused) {
  std::vector<uint8_t> payload(100, 0x5a);
  for (size_t byte = 0; byte < kMessageHeaderSize + payload.size() + kMacSize; ++byte) {
    for (unsigned bit : {0u, 7u}) {
      Pair p;
      auto msg = p.primary.Seal(MessageType::kLog, 5, 0, payload);
      msg[byte] ^= static_cast<uint8_t>(1u << bit);
      Message m;
      Status st = FeedAll(p.shadow, msg, &m);
      // A larger stated length waits for more bytes: give them, it must still be refused.
      std::vector<uint8_t> more(1 << 20, 0);
      for (int i = 0; st == Status::kNeedMore && i < 12; ++i) {
        p.shadow.Feed(more.data(), more.size());
        st = p.shadow.Next(&m);
      }
      EXPECT_EQ(st, Status::kRefused) << "byte " << byte << " bit " << bit;
      EXPECT_FALSE(p.shadow.error().empty());
    }
  }
}

TEST(Channel, ForgedMacIsRefusedAndTheChannelStaysRefused) {
  Pair p;
  auto good1 = p.primary.Seal(MessageType::kHeartbeat, 1, 0);
  auto forged = good1;
  forged[forged.size() - 1] ^= 1;
  Message m;
  ASSERT_EQ(FeedAll(p.shadow, forged, &m), Status::kRefused);
  EXPECT_NE(p.shadow.error().find("MAC"), std::string::npos) << p.shadow.error();
  // The genuine message afterwards is not accepted either: the link is torn down.
  EXPECT_EQ(FeedAll(p.shadow, good1, &m), Status::kRefused);
}

TEST(Channel, ReorderedAndReplayedMessagesAreRefused) {
  {
    Pair p;
    auto m1 = p.primary.Seal(MessageType::kHeartbeat, 1, 0);
    auto m2 = p.primary.Seal(MessageType::kHeartbeat, 2, 0);
    Message m;
    ASSERT_EQ(FeedAll(p.shadow, m2, &m), Status::kRefused);
    EXPECT_NE(p.shadow.error().find("sequence 2, expected 1"), std::string::npos) << p.shadow.error();
  }
  {
    Pair p;
    auto m1 = p.primary.Seal(MessageType::kHeartbeat, 1, 0);
    Message m;
    ASSERT_EQ(FeedAll(p.shadow, m1, &m), Status::kMessage);
    ASSERT_EQ(FeedAll(p.shadow, m1, &m), Status::kRefused);
    EXPECT_NE(p.shadow.error().find("replayed"), std::string::npos) << p.shadow.error();
  }
}

TEST(Channel, TruncatedMessageIsNeverDelivered) {
  Pair p;
  auto m1 = p.primary.Seal(MessageType::kLog, 1, 0, std::vector<uint8_t>(64, 1));
  auto m2 = p.primary.Seal(MessageType::kLog, 2, 0, std::vector<uint8_t>(64, 2));
  Message m;
  std::vector<uint8_t> cut(m1.begin(), m1.end() - 1);
  ASSERT_EQ(FeedAll(p.shadow, cut, &m), Status::kNeedMore);
  // The next message's bytes complete the cut one with a wrong MAC byte: refused.
  ASSERT_EQ(FeedAll(p.shadow, m2, &m), Status::kRefused);
}

TEST(Channel, OtherSessionsKeysAndDirectionsAreRefused) {
  Message m;
  {  // A message of an earlier session, replayed into a new one with the same primary hello.
    Pair a;
    auto old = a.primary.Seal(MessageType::kLog, 9, 0, std::vector<uint8_t>{1, 2, 3});
    SecureChannel::Nonce np = Fill(0x11), ns2 = Fill(0x33);
    SecureChannel primary(TestKey(), Role::kPrimary, &np);
    SecureChannel shadow(TestKey(), Role::kShadow, &ns2);
    ASSERT_EQ(FeedAll(shadow, primary.Hello(), &m), Status::kMessage);
    ASSERT_EQ(FeedAll(shadow, old, &m), Status::kRefused);
  }
  {  // Another key: the hello does not verify.
    Key other = TestKey();
    other[0] ^= 1;
    SecureChannel primary(other, Role::kPrimary);
    SecureChannel shadow(TestKey(), Role::kShadow);
    ASSERT_EQ(FeedAll(shadow, primary.Hello(), &m), Status::kRefused);
  }
  {  // A shadow's own message reflected back to it.
    Pair p;
    auto mine = p.shadow.Seal(MessageType::kHeartbeat, 1, 0);
    ASSERT_EQ(FeedAll(p.shadow, mine, &m), Status::kRefused);
    EXPECT_NE(p.shadow.error().find("role"), std::string::npos);
  }
  {  // Data before the hello, and a second hello.
    Pair p;
    SecureChannel fresh(TestKey(), Role::kShadow);
    ASSERT_EQ(FeedAll(fresh, p.primary.Seal(MessageType::kHeartbeat, 1, 0), &m), Status::kRefused);
    ASSERT_EQ(FeedAll(p.shadow, p.primary.Hello(), &m), Status::kRefused);
  }
}

TEST(Channel, OversizedLengthIsRefusedBeforeBuffering) {
  Pair p;
  auto msg = p.primary.Seal(MessageType::kLog, 1, 0);
  const uint32_t len = kMaxPayload + 1;
  std::memcpy(msg.data() + 32, &len, 4);
  Message m;
  msg.resize(kMessageHeaderSize);
  ASSERT_EQ(FeedAll(p.shadow, msg, &m), Status::kRefused);
  EXPECT_NE(p.shadow.error().find("limit"), std::string::npos);
}

TEST(Channel, GarbageIsRefusedAtOnce) {
  SecureChannel shadow(TestKey(), Role::kShadow);
  Message m;
  ASSERT_EQ(FeedAll(shadow, std::vector<uint8_t>{'G', 'E', 'T', ' '}, &m), Status::kRefused);
}

TEST(Channel, SealNeedsTheHandshake) {
  SecureChannel primary(TestKey(), Role::kPrimary);
  EXPECT_THROW(primary.Seal(MessageType::kLog, 0, 0), LinkError);
  Pair p;
  EXPECT_THROW(p.primary.Seal(MessageType::kHello, 0, 0), LinkError);
}

TEST(KeyFile, HexOrRawOnly) {
  const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  EXPECT_EQ(ParseKey(hex + "\n", "k"), TestKey());
  EXPECT_EQ(ParseKey(hex, "k"), TestKey());
  std::string raw(32, '\0');
  for (int i = 0; i < 32; ++i) raw[static_cast<size_t>(i)] = static_cast<char>(i);
  EXPECT_EQ(ParseKey(raw, "k"), TestKey());
  EXPECT_THROW(ParseKey(hex.substr(0, 62), "k"), LinkError);
  EXPECT_THROW(ParseKey("", "k"), LinkError);
  EXPECT_THROW(ParseKey(std::string(63, 'a') + "g", "k"), LinkError);
  EXPECT_THROW(ParseKey(std::string(31, 'x'), "k"), LinkError);
  EXPECT_THROW(LoadKeyFile("/nonexistent/key"), LinkError);
}

void EchoThroughTransport(const std::string& url) {
  auto listener = Listen(url);
  std::unique_ptr<Transport> server;
  std::thread accept([&] { server = listener->Accept(5000); });
  auto client = Connect(listener->Describe(), 5000);  // tcp:HOST:0 names the port chosen
  accept.join();
  ASSERT_TRUE(server);
  // More than the shared-memory ring holds, so that both ends wait for each other.
  std::vector<uint8_t> data(9 << 20);
  std::mt19937 rng(3);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  std::thread sender([&] { EXPECT_TRUE(client->Send(data.data(), data.size(), 10000)); });
  std::vector<uint8_t> got;
  std::vector<uint8_t> buf(100000);
  while (got.size() < data.size()) {
    ssize_t n = server->Receive(buf.data(), buf.size(), 5000);
    ASSERT_GT(n, 0);
    got.insert(got.end(), buf.begin(), buf.begin() + n);
  }
  sender.join();
  EXPECT_EQ(got, data);
  // And back.
  const uint8_t hi[] = {'h', 'i'};
  ASSERT_TRUE(server->Send(hi, 2, 1000));
  uint8_t two[2];
  size_t have = 0;
  while (have < 2) {
    ssize_t n = client->Receive(two + have, 2 - have, 1000);
    ASSERT_GT(n, 0);
    have += static_cast<size_t>(n);
  }
  EXPECT_EQ(std::memcmp(two, hi, 2), 0);
  EXPECT_EQ(server->Receive(buf.data(), buf.size(), 10), 0);  // nothing more: a timeout
}

TEST(Transport, SharedMemoryRing) {
  const std::string url = "shm:ft_test_" + std::to_string(getpid());
  EchoThroughTransport(url);
}

TEST(Transport, SharedMemoryRingTakesOnePrimary) {
  const std::string url = "shm:ft_test1_" + std::to_string(getpid());
  auto listener = Listen(url);
  auto first = Connect(url, 2000);
  EXPECT_THROW(Connect(url, 200), LinkError);
}

TEST(Transport, TcpLoopback) {
  EchoThroughTransport("tcp:127.0.0.1:0");
}

TEST(Transport, TcpListenerOnPortZeroNamesThePortChosen) {
  auto listener = Listen("tcp:127.0.0.1:0");
  const std::string url = listener->Describe();
  ASSERT_EQ(url.rfind("tcp:127.0.0.1:", 0), 0u) << url;
  const unsigned long port = std::stoul(url.substr(14));
  EXPECT_GT(port, 0u);
  EXPECT_LE(port, 65535u);
  std::string error;
  EXPECT_TRUE(ValidLinkUrl(url, &error)) << error;  // a primary can connect to what it names
  EXPECT_THROW(Listen("tcp:127.0.0.1:65536"), LinkError);
  EXPECT_THROW(Listen("tcp:127.0.0.1:x"), LinkError);
}

TEST(Transport, MalformedUrlsAreRefused) {
  std::string error;
  EXPECT_FALSE(ValidLinkUrl("udp:1.2.3.4:5", &error));
  EXPECT_FALSE(ValidLinkUrl("tcp:host", &error));
  EXPECT_FALSE(ValidLinkUrl("tcp:host:0", &error));
  EXPECT_FALSE(ValidLinkUrl("tcp:host:99999", &error));
  EXPECT_FALSE(ValidLinkUrl("shm:a/b", &error));
  EXPECT_FALSE(ValidLinkUrl("shm:", &error));
  EXPECT_TRUE(ValidLinkUrl("shm:a.b-c_d", &error));
  EXPECT_TRUE(ValidLinkUrl("tcp:127.0.0.1:9000", &error));
  EXPECT_THROW(Connect("shm:nobody_listens_here", 50), LinkError);
}

}  // namespace
}  // namespace vmrr::link
