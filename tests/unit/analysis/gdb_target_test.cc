// The register model served to gdb (analysis/gdb_target.h). The last test hands the target
// description to the real gdb and compares gdb's register layout with the table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/gdb_target.h"

namespace vmrr::analysis {
namespace {

const GdbRegister& Reg(std::string_view name) {
  const GdbRegister* r = FindGdbRegister(name);
  if (r == nullptr) {
    ADD_FAILURE() << "no register " << name;
    static const GdbRegister kNone{};
    return kNone;
  }
  return *r;
}

// The hex of register `name` within a 'g' reply.
std::string Field(const std::string& g, std::string_view name) {
  const GdbRegister& r = Reg(name);
  return g.substr(2 * r.offset, r.bitsize / 4);
}

CpuState DistinctState() {
  CpuState cpu;
  for (unsigned i = 0; i < 16; ++i) cpu.gpr[i] = 0x1111111111111111ull * (i % 15 + 1) + i;
  cpu.rip = 0xffffffff81000123ull;
  cpu.rflags = 0x246;
  const uint16_t selectors[6] = {0x2b, 0x10, 0x18, 0x2b, 0x33, 0x3b};  // es cs ss ds fs gs
  for (unsigned i = 0; i < 6; ++i) cpu.seg[i].selector = selectors[i];
  cpu.seg[4].base = 0x00007f0011223344ull;
  cpu.seg[5].base = 0xffff888077665544ull;
  cpu.kernel_gs_base = 0x0000555566667777ull;
  cpu.cr0 = 0x80050033;
  cpu.cr2 = 0xdeadbeef000;
  cpu.cr3 = 0x0000000001a2b000ull;
  cpu.cr4 = 0x3506f0;
  cpu.cr8 = 0xf;
  cpu.efer = 0xd01;
  return cpu;
}

TEST(GdbTarget, TableIsContiguousInRegnumOrder) {
  auto regs = GdbRegisters();
  ASSERT_EQ(regs.size(), 66u);
  unsigned offset = 0;
  for (unsigned i = 0; i < regs.size(); ++i) {
    EXPECT_EQ(regs[i].regnum, i) << regs[i].name;
    EXPECT_EQ(regs[i].offset, offset) << regs[i].name;
    EXPECT_EQ(regs[i].bitsize % 8, 0u) << regs[i].name;
    EXPECT_EQ(FindGdbRegister(regs[i].name), &regs[i]);
    offset += regs[i].bitsize / 8;
  }
  EXPECT_EQ(GPacketBytes(), offset);
  EXPECT_EQ(GPacketBytes(), 608u);
  EXPECT_EQ(FindGdbRegister("pc"), nullptr);
  EXPECT_EQ(FindGdbRegister(""), nullptr);
}

TEST(GdbTarget, KnownOffsetsAndSizes) {
  struct Want {
    std::string_view name;
    unsigned regnum, offset, bitsize;
  };
  const Want wants[] = {
      {"rax", 0, 0, 64},        {"rsp", 7, 56, 64},      {"r15", 15, 120, 64},    {"rip", 16, 128, 64},
      {"eflags", 17, 136, 32},  {"cs", 18, 140, 32},     {"gs", 23, 160, 32},     {"st0", 24, 164, 80},
      {"st7", 31, 234, 80},     {"fctrl", 32, 244, 32},  {"fop", 39, 272, 32},    {"xmm0", 40, 276, 128},
      {"xmm15", 55, 516, 128},  {"mxcsr", 56, 532, 32},  {"fs_base", 57, 536, 64}, {"gs_base", 58, 544, 64},
      {"k_gs_base", 59, 552, 64}, {"cr0", 60, 560, 64},  {"cr3", 62, 576, 64},    {"cr8", 64, 592, 64},
      {"efer", 65, 600, 64},
  };
  for (const Want& w : wants) {
    const GdbRegister& r = Reg(w.name);
    EXPECT_EQ(r.regnum, w.regnum) << w.name;
    EXPECT_EQ(r.offset, w.offset) << w.name;
    EXPECT_EQ(r.bitsize, w.bitsize) << w.name;
  }
}

// The table and the XML are written separately; they must list the same registers.
TEST(GdbTarget, TableMatchesTheXml) {
  std::string_view xml = TargetXml();
  EXPECT_TRUE(xml.starts_with("<?xml version=\"1.0\"?>"));
  EXPECT_NE(xml.find("<architecture>i386:x86-64</architecture>"), std::string_view::npos);
  for (std::string_view f : {"org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.segments",
                             "org.vmrr.gdb.i386.system"})
    EXPECT_NE(xml.find("<feature name=\"" + std::string(f) + "\">"), std::string_view::npos) << f;
  std::vector<std::pair<std::string, unsigned>> in_xml;
  for (size_t at = xml.find("<reg "); at != std::string_view::npos; at = xml.find("<reg ", at + 1)) {
    size_t n = xml.find("name=\"", at) + 6;
    size_t b = xml.find("bitsize=\"", at) + 9;
    std::string bitsize(xml.substr(b, xml.find('"', b) - b));
    in_xml.emplace_back(std::string(xml.substr(n, xml.find('"', n) - n)),
                        static_cast<unsigned>(std::stoul(bitsize)));
  }
  auto regs = GdbRegisters();
  ASSERT_EQ(in_xml.size(), regs.size());
  for (size_t i = 0; i < regs.size(); ++i) {
    EXPECT_EQ(in_xml[i].first, regs[i].name) << i;
    EXPECT_EQ(in_xml[i].second, regs[i].bitsize) << regs[i].name;
  }
  // The packet layer escapes these, but a description free of them travels unescaped.
  EXPECT_EQ(xml.find_first_of("#$}*"), std::string_view::npos);
}

TEST(GdbTarget, GPacketEncodesEachRegisterLittleEndianInItsSize) {
  CpuState cpu = DistinctState();
  std::string g = EncodeGPacket(cpu);
  ASSERT_EQ(g.size(), 2 * GPacketBytes());
  // gdb's GPR order differs from CpuState's encoding order.
  EXPECT_EQ(Field(g, "rax"), "1111111111111111");
  EXPECT_EQ(Field(g, "rbx"), "4744444444444444");  // gpr[3]
  EXPECT_EQ(Field(g, "rcx"), "2322222222222222");  // gpr[1]
  EXPECT_EQ(Field(g, "rsp"), "5955555555555555");  // gpr[4]
  EXPECT_EQ(Field(g, "rdi"), "8f88888888888888");  // gpr[7]
  EXPECT_EQ(Field(g, "r15"), "2011111111111111");  // gpr[15]: 0x1111.. * 1 + 15
  EXPECT_EQ(Field(g, "rip"), "23010081ffffffff");
  EXPECT_EQ(Field(g, "eflags"), "46020000");
  EXPECT_EQ(Field(g, "cs"), "10000000");
  EXPECT_EQ(Field(g, "ss"), "18000000");
  EXPECT_EQ(Field(g, "ds"), "2b000000");
  EXPECT_EQ(Field(g, "es"), "2b000000");
  EXPECT_EQ(Field(g, "fs"), "33000000");
  EXPECT_EQ(Field(g, "gs"), "3b000000");
  EXPECT_EQ(Field(g, "fs_base"), "44332211007f0000");
  EXPECT_EQ(Field(g, "gs_base"), "445566778088ffff");
  EXPECT_EQ(Field(g, "k_gs_base"), "7777666655550000");
  EXPECT_EQ(Field(g, "cr0"), "3300058000000000");
  EXPECT_EQ(Field(g, "cr2"), "00f0eedbea0d0000");
  EXPECT_EQ(Field(g, "cr3"), "00b0a20100000000");
  EXPECT_EQ(Field(g, "cr4"), "f006350000000000");
  EXPECT_EQ(Field(g, "cr8"), "0f00000000000000");
  EXPECT_EQ(Field(g, "efer"), "010d000000000000");
  // No FPU yet: zero registers and the FNINIT control state.
  EXPECT_EQ(Field(g, "st0"), std::string(20, '0'));
  EXPECT_EQ(Field(g, "st7"), std::string(20, '0'));
  EXPECT_EQ(Field(g, "fctrl"), "7f030000");
  EXPECT_EQ(Field(g, "fstat"), "00000000");
  EXPECT_EQ(Field(g, "ftag"), "ffff0000");
  EXPECT_EQ(Field(g, "xmm0"), std::string(32, '0'));
  EXPECT_EQ(Field(g, "mxcsr"), "801f0000");
}

TEST(GdbTarget, FpuViewIsEncoded) {
  FpuView fpu;
  fpu.st[0] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f};  // 1.0
  fpu.st[7] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  fpu.fstat = 0x3800;  // TOP = 7
  fpu.ftag = 0x3fff;
  fpu.fiseg = 0x10;
  fpu.fioff = 0x12345678;
  fpu.fop = 0x7ff;
  for (unsigned i = 0; i < 16; ++i) fpu.xmm[15][i] = static_cast<uint8_t>(0xf0 + i);
  fpu.mxcsr = 0x9fc0;
  std::string g = EncodeGPacket(CpuState{}, fpu);
  EXPECT_EQ(Field(g, "st0"), "0000000000000080ff3f");
  EXPECT_EQ(Field(g, "st7"), "0102030405060708090a");
  EXPECT_EQ(Field(g, "fstat"), "00380000");
  EXPECT_EQ(Field(g, "ftag"), "ff3f0000");
  EXPECT_EQ(Field(g, "fiseg"), "10000000");
  EXPECT_EQ(Field(g, "fioff"), "78563412");
  EXPECT_EQ(Field(g, "fop"), "ff070000");
  EXPECT_EQ(Field(g, "xmm15"), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  EXPECT_EQ(Field(g, "xmm14"), std::string(32, '0'));
  EXPECT_EQ(Field(g, "mxcsr"), "c09f0000");
}

TEST(GdbTarget, FpuViewOfTheCpuStackOrderAndFullTags) {
  CpuState s;
  s.fsw = 6u << 11;  // TOP = 6: ST(0) is R6, ST(1) is R7, ST(2) is R0
  s.st[6] = X87Reg{0x8000000000000000ull, 0x3fff};  // 1.0: valid
  s.st[7] = X87Reg{0, 0};                           // +0: zero
  s.st[0] = X87Reg{0xc000000000000000ull, 0xffff};  // -QNaN: special
  s.st[1] = X87Reg{1, 0};                           // a denormal: special
  s.ftw = (1u << 6) | (1u << 7) | (1u << 0) | (1u << 1);
  s.fcw = 0x027f;
  s.fop = 0x1d9;
  s.xmm[3][0] = 0x0706050403020100ull;
  s.xmm[3][1] = 0x0f0e0d0c0b0a0908ull;
  s.mxcsr = 0x9fc0;
  const FpuView v = FpuViewOf(s);
  const std::array<uint8_t, 10> one = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f};
  EXPECT_EQ(v.st[0], one);
  EXPECT_EQ(v.st[1], (std::array<uint8_t, 10>{}));
  EXPECT_EQ(v.st[2][9], 0xff);
  EXPECT_EQ(v.st[2][7], 0xc0);
  // R0 special (10), R1 special (10), R2-R5 empty (11), R6 valid (00), R7 zero (01).
  EXPECT_EQ(v.ftag, 0b01'00'11'11'11'11'10'10);
  EXPECT_EQ(v.fctrl, 0x027f);
  EXPECT_EQ(v.fstat, 6u << 11);
  EXPECT_EQ(v.fop, 0x1d9);
  for (unsigned b = 0; b < 16; ++b) EXPECT_EQ(v.xmm[3][b], b);
  EXPECT_EQ(v.mxcsr, 0x9fc0u);
  // Through the g packet: st0 at its offset, as 1.0.
  const std::string g = EncodeGPacket(s, v);
  const GdbRegister* st0 = FindGdbRegister("st0");
  ASSERT_NE(st0, nullptr);
  EXPECT_EQ(g.substr(2 * st0->offset, 20), "0000000000000080ff3f");
}

TEST(GdbTarget, PRepliesAreTheGSlices) {
  CpuState cpu = DistinctState();
  FpuView fpu;
  fpu.st[3][9] = 0x40;
  fpu.xmm[2][0] = 0x5a;
  std::string g = EncodeGPacket(cpu, fpu);
  for (const GdbRegister& r : GdbRegisters()) {
    auto p = EncodeRegister(cpu, r.regnum, fpu);
    ASSERT_TRUE(p) << r.name;
    EXPECT_EQ(*p, g.substr(2 * r.offset, r.bitsize / 4)) << r.name;
  }
  EXPECT_FALSE(EncodeRegister(cpu, 66));
  EXPECT_FALSE(EncodeRegister(cpu, 152));  // gdb's internal number of fs_base, not a remote one
  EXPECT_FALSE(EncodeRegister(cpu, ~0u));
}

TEST(GdbTarget, XferReadSlicesAtTheEdges) {
  EXPECT_EQ(XferRead("abcdef", 0, 3), "mabc");
  EXPECT_EQ(XferRead("abcdef", 3, 3), "ldef");
  EXPECT_EQ(XferRead("abcdef", 0, 6), "labcdef");
  EXPECT_EQ(XferRead("abcdef", 0, 5), "mabcde");
  EXPECT_EQ(XferRead("abcdef", 0, 100), "labcdef");
  EXPECT_EQ(XferRead("abcdef", 5, 1), "lf");
  EXPECT_EQ(XferRead("abcdef", 6, 1), "l");
  EXPECT_EQ(XferRead("abcdef", 7, 1), "l");
  EXPECT_EQ(XferRead("abcdef", 1, ~uint64_t{0}), "lbcdef");
  EXPECT_EQ(XferRead("abcdef", ~uint64_t{0}, ~uint64_t{0}), "l");
  EXPECT_EQ(XferRead("", 0, 10), "l");
  // gdb's loop: read until "l", in chunks of any size, reassembles the document.
  for (uint64_t chunk : {1u, 7u, 1000u, 4096u}) {
    std::string doc;
    for (uint64_t off = 0;; off += chunk) {
      std::string r = XferRead(TargetXml(), off, chunk);
      ASSERT_FALSE(r.empty());
      ASSERT_LE(r.size(), chunk + 1);
      doc += r.substr(1);
      if (r[0] == 'l') break;
      ASSERT_EQ(r[0], 'm');
      ASSERT_LT(off, TargetXml().size());
    }
    EXPECT_EQ(doc, TargetXml()) << chunk;
  }
}

TEST(GdbTarget, XferRequestParses) {
  EXPECT_EQ(ParseXferFeaturesRead("qXfer:features:read:target.xml:0,ffb"),
            (XferRequest{"target.xml", 0, 0xffb}));
  EXPECT_EQ(ParseXferFeaturesRead("qXfer:features:read:i386-64bit.xml:FFB,1"),
            (XferRequest{"i386-64bit.xml", 0xffb, 1}));
  EXPECT_EQ(ParseXferFeaturesRead("qXfer:features:read:target.xml:ffffffffffffffff,ffffffffffffffff"),
            (XferRequest{"target.xml", ~uint64_t{0}, ~uint64_t{0}}));
}

TEST(GdbTarget, XferRequestRefusesGarbage) {
  const std::string p = "qXfer:features:read:";
  for (const std::string& bad :
       {std::string(), std::string("qXfer"), std::string("qXfer:features:read"), p, p + "target.xml",
        p + "target.xml:", p + "target.xml:0", p + "target.xml:0,", p + "target.xml:,1",
        p + "target.xml:0,0", p + "target.xml:g,1", p + "target.xml:0,1,2", p + "target.xml:0,1;",
        p + "target.xml:-1,1", p + "target.xml:0x0,1", p + "target.xml: 0,1", p + "target.xml:0, 1",
        p + ":0,1", p + "a:b:0,1", p + "target.xml:10000000000000000,1",
        p + "target.xml:0,10000000000000000", std::string("qXfer:features:write:target.xml:0,1"),
        std::string("qXfer:memory-map:read::0,1"), std::string("qxfer:features:read:target.xml:0,1"),
        p + "target.xml:0,1" + std::string(1, '\0')}) {
    EXPECT_FALSE(ParseXferFeaturesRead(bad)) << bad;
  }
}

TEST(GdbTarget, XferRequestRandomInputNeverBreaksTheContract) {
  std::mt19937_64 rng(13);
  const std::string alphabet = std::string("0123456789abcdefgF:,;x.-") + std::string(1, '\0');
  for (int i = 0; i < 20000; ++i) {
    std::string s = "qXfer:features:read:";
    size_t n = rng() % 24;
    for (size_t j = 0; j < n; ++j) s.push_back(alphabet[rng() % alphabet.size()]);
    auto r = ParseXferFeaturesRead(s);
    if (!r) continue;
    EXPECT_FALSE(r->annex.empty()) << s;
    EXPECT_EQ(r->annex.find(':'), std::string::npos) << s;
    EXPECT_NE(r->length, 0u) << s;
  }
}

// --- The real gdb ---

std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// The command's stdout (with stderr if it redirects it); *status is pclose's status.
std::string RunAndCapture(const std::string& command, int* status) {
  std::string out;
  *status = -1;
  FILE* f = popen(command.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  *status = pclose(f);
  return out;
}

struct GdbRow {
  unsigned size;     // bytes
  unsigned rmt_nr;   // remote register number
  unsigned goffset;  // offset in the g packet
};

// gdb's tdesc parser accepts many mistakes silently and falls back to its built-in amd64
// registers on others, whose core part has the same layout; so the test looks for warnings,
// for the extra registers, and for every size gdb derived (a flags type whose size disagrees
// with bitsize silently changes the register's size, as QEMU once shipped for efer).
TEST(GdbTarget, RealGdbAcceptsTheDescriptionWithTheSameLayout) {
  std::string gdb = FindOnPath("gdb");
  if (gdb.empty()) GTEST_SKIP() << "gdb is not on PATH; the description is not checked against it";

  std::string file = ::testing::TempDir() + "vmrr_gdb_target_" + std::to_string(getpid()) + ".xml";
  {
    std::ofstream out(file, std::ios::binary);
    out << TargetXml();
    ASSERT_TRUE(out.good());
  }
  // remote-registers, not raw-registers: only it shows the remote numbers and g offsets
  // (its Nr and Offset columns are gdb's internal numbering and regcache layout).
  int status;
  std::string output = RunAndCapture("'" + gdb + "' -nx -batch -ex 'set architecture i386:x86-64'" +
                                         " -ex 'set tdesc filename " + file + "'" +
                                         " -ex 'maint print remote-registers' </dev/null 2>&1",
                                     &status);
  std::remove(file.c_str());
  ASSERT_EQ(status, 0) << output;

  std::map<std::string, GdbRow> rows;
  std::stringstream lines(output);
  bool header = false;
  for (std::string line; std::getline(lines, line);) {
    std::string lower = line;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(lower.find("warning"), std::string::npos) << line;
    EXPECT_EQ(lower.find("error"), std::string::npos) << line;
    std::vector<std::string> tok;
    std::stringstream words(line);
    for (std::string w; words >> w;) tok.push_back(w);
    if (!tok.empty() && tok[0] == "Name") {
      header = true;
      continue;
    }
    // Name Nr Rel Offset Size Type Rmt-Nr g/G-Offset; rows without the last two are
    // pseudo registers or unused numbers that gdb never asks the stub for.
    if (!header || tok.size() < 8) continue;
    rows[tok[0]] = GdbRow{static_cast<unsigned>(std::stoul(tok[4])),
                          static_cast<unsigned>(std::stoul(tok[tok.size() - 2])),
                          static_cast<unsigned>(std::stoul(tok.back()))};
  }
  ASSERT_TRUE(header) << output;

  // Every register the stub serves, with gdb's remote number, g offset and size.
  for (const GdbRegister& r : GdbRegisters()) {
    auto it = rows.find(std::string(r.name));
    if (it == rows.end()) {
      ADD_FAILURE() << "gdb has no remote register " << r.name;
      continue;
    }
    EXPECT_EQ(it->second.rmt_nr, r.regnum) << r.name;
    EXPECT_EQ(it->second.goffset, r.offset) << r.name;
    EXPECT_EQ(it->second.size * 8, r.bitsize) << r.name;
  }
  // And nothing else that gdb would fetch.
  EXPECT_EQ(rows.size(), GdbRegisters().size());
}

}  // namespace
}  // namespace vmrr::analysis
