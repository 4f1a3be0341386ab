// The gdb remote protocol's packet layer (analysis/gdb_packet.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "analysis/gdb_packet.h"

namespace vmrr::analysis {
// Readable failures.
void PrintTo(const GdbEvent& e, std::ostream* os) {
  *os << "{kind " << static_cast<int>(e.kind) << ", " << e.payload.size() << " bytes}";
}

namespace {

using K = GdbEvent::Kind;

std::vector<GdbEvent> All(GdbPacketReader& r) {
  std::vector<GdbEvent> out;
  while (auto e = r.Next()) out.push_back(std::move(*e));
  return out;
}

std::vector<GdbEvent> FeedAll(std::string_view bytes, size_t max = GdbPacketReader::kDefaultMaxPacket) {
  GdbPacketReader r(max);
  r.Feed(bytes);
  return All(r);
}

std::vector<GdbEvent> FeedBytewise(std::string_view bytes, size_t max = GdbPacketReader::kDefaultMaxPacket) {
  GdbPacketReader r(max);
  std::vector<GdbEvent> out;
  for (char c : bytes) {
    r.Feed(std::string_view(&c, 1));
    for (auto& e : All(r)) out.push_back(std::move(e));
  }
  return out;
}

// '$' + raw + '#' + raw's checksum (raw sent as is: no escaping).
std::string Frame(std::string_view raw) {
  uint8_t sum = 0;
  for (char c : raw) sum = static_cast<uint8_t>(sum + c);
  char hex[3];
  std::snprintf(hex, sizeof hex, "%02x", sum);
  return "$" + std::string(raw) + "#" + hex;
}

GdbEvent Pkt(std::string p) { return GdbEvent{K::kPacket, std::move(p)}; }
GdbEvent Ev(K k) { return GdbEvent{k, {}}; }

// Feeding all at once and byte by byte must agree; returns the events.
std::vector<GdbEvent> Both(std::string_view bytes, size_t max = GdbPacketReader::kDefaultMaxPacket) {
  auto a = FeedAll(bytes, max);
  EXPECT_EQ(a, FeedBytewise(bytes, max));
  return a;
}

TEST(GdbPacket, KnownPacketsFromTheManual) {
  // 'q'+'S'+'u'+... of "qSupported:multiprocess+;swbreak+" sums to 3355 = 13 * 256 + 0x1b.
  EXPECT_EQ(Both("$qSupported:multiprocess+;swbreak+#1b"),
            std::vector{Pkt("qSupported:multiprocess+;swbreak+")});
  // 'g' = 0x67.
  EXPECT_EQ(Both("$g#67"), std::vector{Pkt("g")});
  // 'v'+'C'+'o'+'n'+'t'+';'+'c' = 118+67+111+110+116+59+99 = 680 = 2 * 256 + 0xa8.
  EXPECT_EQ(Both("$vCont;c#a8"), std::vector{Pkt("vCont;c")});
  // Upper-case checksum digits are accepted.
  EXPECT_EQ(Both("$vCont;c#A8"), std::vector{Pkt("vCont;c")});
  EXPECT_EQ(Both("$#00"), std::vector{Pkt("")});
}

TEST(GdbPacket, EscapedBinaryXPacket) {
  // X1000,4: with the bytes 23 7d 00 2a, sent as }03 }5d 00 }0a. The checksum is over the
  // bytes as sent: "X1000,4:" = 88+49+48+48+48+44+52+58 = 435; then 7d+03+7d+5d+00+7d+0a =
  // 125+3+125+93+0+125+10 = 481; 435 + 481 = 916 = 3 * 256 + 0x94.
  std::string sent = std::string("$X1000,4:}\x03}]") + '\0' + "}\x0a#94";
  std::string want = std::string("X1000,4:#}") + '\0' + "*";
  EXPECT_EQ(Both(sent), std::vector{Pkt(want)});
  EXPECT_EQ(EncodeGdbPacket(want), sent);
}

TEST(GdbPacket, RunLengthReply) {
  // "0* " is '0' then ' ' (32) - 29 = 3 more: "0000". '0'+'*'+' ' = 48+42+32 = 122 = 0x7a.
  EXPECT_EQ(Both("$0* #7a"), std::vector{Pkt("0000")});
  // '~' (126) repeats 97 more times; "f*~12" = 102+42+126+49+50 = 369 = 256 + 0x71.
  EXPECT_EQ(Frame("f*~12"), "$f*~12#71");
  EXPECT_EQ(Both("$f*~12#71"), std::vector{Pkt(std::string(98, 'f') + "12")});
  // A repeat of an escaped byte repeats the decoded byte.
  EXPECT_EQ(Both(Frame("}]* ")), std::vector{Pkt("}}}}")});
  // Repeats anywhere in a packet, with '"' (5 more), the way a stub sends 6 or 7.
  EXPECT_EQ(Both(Frame("E0*\"x")), std::vector{Pkt("E000000x")});
}

TEST(GdbPacket, MalformedEscapesAndRepeats) {
  // '*' with nothing before it; '*' with a count below ' '; '}' right before '#'.
  EXPECT_EQ(Both("$* #4a+"), (std::vector{Ev(K::kMalformed), Ev(K::kAck)}));
  EXPECT_EQ(Both("$a*\x01#00+$g#67"), (std::vector{Ev(K::kMalformed), Ev(K::kAck), Pkt("g")}));
  EXPECT_EQ(Both("$a}#00+$g#67"), (std::vector{Ev(K::kMalformed), Ev(K::kAck), Pkt("g")}));
  EXPECT_EQ(Both("$a*#00-$g#67"), (std::vector{Ev(K::kMalformed), Ev(K::kNack), Pkt("g")}));
}

TEST(GdbPacket, BadChecksum) {
  EXPECT_EQ(Both("$g#68$g#67"), (std::vector{Ev(K::kBadChecksum), Pkt("g")}));
  EXPECT_EQ(Both("$g#zz+"), (std::vector{Ev(K::kBadChecksum), Ev(K::kAck)}));
}

TEST(GdbPacket, AcksAndInterrupts) {
  EXPECT_EQ(Both("+-\x03"), (std::vector{Ev(K::kAck), Ev(K::kNack), Ev(K::kInterrupt)}));
  // Ctrl-C between packets, and during a continue (after vCont;c and its ack).
  EXPECT_EQ(Both("$g#67\x03$g#67"), (std::vector{Pkt("g"), Ev(K::kInterrupt), Pkt("g")}));
  EXPECT_EQ(Both("+$vCont;c#a8\x03"), (std::vector{Ev(K::kAck), Pkt("vCont;c"), Ev(K::kInterrupt)}));
  // 0x03, '+' and '-' inside a packet are payload bytes.
  std::string p = EncodeGdbPacket("a\x03+-b");
  EXPECT_EQ(Both(p), std::vector{Pkt("a\x03+-b")});
}

TEST(GdbPacket, GarbageBetweenPacketsIsSkipped) {
  EXPECT_EQ(Both("xyz#12\n\r\xff$g#67 junk \x01+"), (std::vector{Pkt("g"), Ev(K::kAck)}));
  // A '$' inside a packet restarts it.
  EXPECT_EQ(Both("$qSupp$g#67"), std::vector{Pkt("g")});
  // A '$' in place of a checksum digit starts a new packet.
  EXPECT_EQ(Both("$g#6$g#67"), std::vector{Pkt("g")});
}

TEST(GdbPacket, OversizedPacketsAreRefusedAndTheReaderResyncs) {
  std::string big = EncodeGdbPacket(std::string(17, 'a'));
  EXPECT_EQ(Both(big + "+" + EncodeGdbPacket("g"), 16), (std::vector{Ev(K::kOversized), Ev(K::kAck), Pkt("g")}));
  // Exactly the maximum is accepted.
  EXPECT_EQ(Both(EncodeGdbPacket(std::string(16, 'a')), 16), std::vector{Pkt(std::string(16, 'a'))});
  // A run-length count that would go past the maximum; then a '$' before the '#' resyncs.
  EXPECT_EQ(Both("$aaaaaaaaaaaaa* $g#67", 15), (std::vector{Ev(K::kOversized), Pkt("g")}));
  // The default is 64 KiB decoded: 64 KiB + 1 is refused.
  std::string huge = EncodeGdbPacket(std::string(64 * 1024 + 1, 'x'));
  EXPECT_EQ(FeedAll(huge + EncodeGdbPacket("g")), (std::vector{Ev(K::kOversized), Pkt("g")}));
}

TEST(GdbPacket, RoundTripRandomPayloadsWithEveryByte) {
  std::mt19937_64 rng(12345);
  std::string every;
  for (int b = 0; b < 256; ++b) every.push_back(static_cast<char>(b));
  std::vector<std::string> payloads{every, ""};
  for (int i = 0; i < 200; ++i) {
    std::string p(rng() % 600, '\0');
    for (char& c : p) c = static_cast<char>(rng());
    payloads.push_back(std::move(p));
  }
  std::string stream;
  std::vector<GdbEvent> want;
  for (const auto& p : payloads) {
    std::string enc = EncodeGdbPacket(p);
    ASSERT_EQ(FeedAll(enc), std::vector{Pkt(p)});
    stream += enc;
    stream += '+';
    want.push_back(Pkt(p));
    want.push_back(Ev(K::kAck));
  }
  EXPECT_EQ(FeedAll(stream), want);
  EXPECT_EQ(FeedBytewise(stream), want);
  // Random chunk sizes.
  GdbPacketReader r;
  std::vector<GdbEvent> got;
  for (size_t i = 0; i < stream.size();) {
    size_t n = std::min<size_t>(stream.size() - i, rng() % 97);
    r.Feed(std::string_view(stream).substr(i, n));
    i += n;
    for (auto& e : All(r)) got.push_back(std::move(e));
  }
  EXPECT_EQ(got, want);
}

TEST(GdbPacket, Encode) {
  EXPECT_EQ(EncodeGdbPacket("g"), "$g#67");
  EXPECT_EQ(EncodeGdbPacket("OK"), "$OK#9a");
  EXPECT_EQ(EncodeGdbPacket("a#b$c}d*e"), Frame("a}\x03" "b}\x04" "c}]d}\x0a" "e"));
}

TEST(GdbPacket, Hex) {
  EXPECT_EQ(HexEncode(std::string_view("\x00\x7f\xff\x10", 4)), "007fff10");
  EXPECT_EQ(HexDecode("007fFF10"), (std::vector<uint8_t>{0x00, 0x7f, 0xff, 0x10}));
  EXPECT_EQ(HexDecode(""), std::vector<uint8_t>{});
  EXPECT_EQ(HexDecode("abc"), std::nullopt);
  EXPECT_EQ(HexDecode("zz"), std::nullopt);
  EXPECT_EQ(HexDecode("0g"), std::nullopt);
}

TEST(GdbPacket, HexArguments) {
  EXPECT_EQ(ParseHexU64("0"), 0u);
  EXPECT_EQ(ParseHexU64("ffffffffffffffff"), ~uint64_t{0});
  EXPECT_EQ(ParseHexU64("0000ffffffffffffffff"), ~uint64_t{0});
  EXPECT_EQ(ParseHexU64("10000000000000000"), std::nullopt);
  EXPECT_EQ(ParseHexU64(""), std::nullopt);
  EXPECT_EQ(ParseHexU64("-1"), std::nullopt);
  EXPECT_EQ(ParseHexU64("1 "), std::nullopt);

  EXPECT_EQ(ParseHexList("0,401000,1", 3), (std::vector<uint64_t>{0, 0x401000, 1}));
  EXPECT_EQ(ParseHexList("0,401000", 3), std::nullopt);
  EXPECT_EQ(ParseHexList("0,401000,1,2", 3), std::nullopt);
  EXPECT_EQ(ParseHexList("0,,1", 3), std::nullopt);
  EXPECT_EQ(ParseHexList("0,401000,", 3), std::nullopt);
  EXPECT_EQ(ParseHexList("", 0), std::vector<uint64_t>{});

  EXPECT_EQ(ParseGdbMemRange("1000,4"), (GdbMemRange{0x1000, 4}));
  EXPECT_EQ(ParseGdbMemRange("0,ffffffffffffffff"), (GdbMemRange{0, ~uint64_t{0}}));
  EXPECT_EQ(ParseGdbMemRange("fffffffffffffffc,4"), (GdbMemRange{0xfffffffffffffffc, 4}));
  EXPECT_EQ(ParseGdbMemRange("fffffffffffffffc,5"), std::nullopt);
  EXPECT_EQ(ParseGdbMemRange("1000"), std::nullopt);
  EXPECT_EQ(ParseGdbMemRange("1000,4,"), std::nullopt);
  EXPECT_EQ(ParseGdbMemRange("x,4"), std::nullopt);
}

}  // namespace
}  // namespace vmrr::analysis
