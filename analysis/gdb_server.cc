#include "analysis/gdb_server.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <deque>
#include <exception>
#include <sstream>
#include <variant>

#include <fmt/format.h>

#include "analysis/gdb_target.h"
#include "logformat/error.h"
#include "replayer/disassemble.h"

namespace vmrr::analysis {
namespace {

constexpr size_t kPacketSize = 0x4000;  // what qSupported announces (payload bytes)
constexpr char kReadOnly[] = "E.a recording cannot be changed: vmrr debug refuses register and memory writes";

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }


std::string Printable(const std::vector<uint8_t>& b, size_t max = 24) {
  std::string s;
  for (size_t i = 0; i < b.size() && i < max; ++i)
    s += b[i] >= 0x20 && b[i] < 0x7f ? std::string(1, static_cast<char>(b[i])) : fmt::format("\\x{:02x}", b[i]);
  if (b.size() > max) s += "...";
  return s;
}

// One line for a log record, or empty for records `events` does not show.
std::string DescribeRecord(const log::Record& r) {
  return std::visit(
      [&](const auto& b) -> std::string {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, log::TimeSample>) return fmt::format("time sample {} ns", b.host_ns);
        else if constexpr (std::is_same_v<T, log::ConsoleIn>)
          return fmt::format("console in {} bytes \"{}\"", b.bytes.size(), Printable(b.bytes));
        else if constexpr (std::is_same_v<T, log::NetRx>) return fmt::format("net rx frame of {} bytes", b.frame.size());
        else if constexpr (std::is_same_v<T, log::Entropy>) return fmt::format("entropy {} bytes", b.bytes.size());
        else if constexpr (std::is_same_v<T, log::IdleWake>) return b.input ? "idle wake (input)" : "idle wake (none)";
        else if constexpr (std::is_same_v<T, log::IrqDelivered>) return fmt::format("interrupt vector {:#x}", b.vector);
        else if constexpr (std::is_same_v<T, log::End>) return "end of the recording";
        else return "";
      },
      r.body);
}

std::optional<uint64_t> ParseNumber(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  int base = 10;
  if (StartsWith(s, "0x") || StartsWith(s, "0X")) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> w;
  std::istringstream in(s);
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

}  // namespace

GdbServer::GdbServer(TimeTravel& tt) : tt_(tt) { last_stop_.icount = tt.icount(); }

std::string GdbServer::StopReply(const TravelStop& s) {
  last_stop_ = s;
  switch (s.kind) {
    case TravelStop::Kind::kInterrupted: return "T02thread:01;";
    case TravelStop::Kind::kBegin: return "T05thread:01;replaylog:begin;";
    case TravelStop::Kind::kEnd: return "T05thread:01;replaylog:end;";
    case TravelStop::Kind::kBreakpoint: {
      const CpuState& st = tt_.machine().cpu().state();
      const uint64_t lin = st.seg[kCs].base + st.rip;
      return hw_breaks_.count(lin) && !sw_breaks_.count(lin) ? "T05thread:01;hwbreak:;" : "T05thread:01;swbreak:;";
    }
    case TravelStop::Kind::kWatchpoint: {
      // Name the watchpoint gdb set that covers the access, by its type.
      const WatchHit& h = s.watch;
      const char* name = h.kind == kWatchRead ? "rwatch" : "watch";
      for (const Watch& w : watches_) {
        const bool overlap = h.address >= w.addr && h.address - w.addr < w.len;
        const bool kind_ok = w.type == '4' || (w.type == '2' && h.kind == kWatchWrite) ||
                             (w.type == '3' && h.kind == kWatchRead);
        if (overlap && kind_ok) {
          name = w.type == '4' ? "awatch" : w.type == '3' ? "rwatch" : "watch";
          break;
        }
      }
      return fmt::format("T05thread:01;{}:{:x};", name, h.address);
    }
    case TravelStop::Kind::kTarget: break;
  }
  return "T05thread:01;";
}

void GdbServer::SyncWatchpoints() {
  std::vector<Watchpoint> w;
  for (const Watch& x : watches_) {
    const uint8_t kinds = x.type == '2' ? kWatchWrite : x.type == '3' ? kWatchRead : kWatchRead | kWatchWrite;
    w.push_back(Watchpoint{x.addr, x.len, kinds});
  }
  tt_.SetWatchpoints(std::move(w));
}

std::string GdbServer::ReadMemory(std::string_view args) {
  const std::optional<GdbMemRange> r = ParseGdbMemRange(args);
  if (!r) return "E01";
  const uint64_t len = std::min<uint64_t>(r->length, kPacketSize / 2);
  Machine& m = tt_.machine();
  std::vector<uint8_t> out;
  out.reserve(len);
  uint64_t at = r->addr;
  while (out.size() < len) {
    uint64_t gpa;
    if (!m.cpu().TranslateLinear(at, &gpa)) break;
    const uint64_t in_page = std::min<uint64_t>(len - out.size(), 4096 - (at & 0xfff));
    const uint8_t* p = m.memory().Span(gpa, in_page);
    if (!p) break;  // MMIO or outside RAM: never read through a device
    out.insert(out.end(), p, p + in_page);
    at += in_page;
  }
  if (out.empty() && len > 0) return "E14";
  return HexEncode(std::span<const uint8_t>(out));
}

std::string GdbServer::Breakpoint(std::string_view packet) {
  // Z<type>,<addr>,<kind/length>[;cond...]
  const bool insert = packet[0] == 'Z';
  if (packet.size() < 3 || packet[2] != ',') return "E01";
  const char type = packet[1];
  std::string_view args = packet.substr(3);
  args = args.substr(0, args.find(';'));
  const std::optional<std::vector<uint64_t>> v = ParseHexList(args, 2);
  if (!v) return "E01";
  const uint64_t addr = (*v)[0], len = (*v)[1];
  if (type == '0' || type == '1') {
    auto& map = type == '0' ? sw_breaks_ : hw_breaks_;
    if (insert) {
      ++map[addr];
      tt_.AddBreakpoint(addr);
    } else {
      auto it = map.find(addr);
      if (it == map.end()) return "E02";
      if (--it->second == 0) map.erase(it);
      if (!sw_breaks_.count(addr) && !hw_breaks_.count(addr)) tt_.RemoveBreakpoint(addr);
    }
    return "OK";
  }
  if (type >= '2' && type <= '4') {
    if (len == 0 || len - 1 > ~uint64_t{0} - addr) return "E01";
    const Watch w{addr, len, type};
    if (insert) {
      watches_.push_back(w);
    } else {
      auto it = std::find(watches_.begin(), watches_.end(), w);
      if (it == watches_.end()) return "E02";
      watches_.erase(it);
    }
    SyncWatchpoints();
    return "OK";
  }
  return "";  // an unsupported type: gdb falls back
}

std::string GdbServer::Resume(char action, const TimeTravel::Interrupt& interrupt) {
  if (action == 'c') return StopReply(tt_.ContinueForward(interrupt));
  return StopReply(tt_.StepForward());
}

std::string GdbServer::VCont(std::string_view args, const TimeTravel::Interrupt& interrupt) {
  // vCont;action[:thread][;action[:thread]]...: one thread, so the first action decides.
  if (args == "?") return "vCont;c;C;s;S";
  if (args.empty() || args[0] != ';' || args.size() < 2) return "E01";
  const char a = args[1];
  if (a == 'c' || a == 'C') return Resume('c', interrupt);  // signals are not delivered
  if (a == 's' || a == 'S') return Resume('s', interrupt);
  return "E01";
}

std::string GdbServer::Events(uint64_t around, size_t n) {
  const log::LogReader& reader = tt_.reader();
  if (reader.frames().empty()) return "no records\n";
  const size_t f = std::min(reader.FindFrame(around), reader.frames().size() - 1);
  std::vector<log::Record> scratch, records;
  // Enough frames around here to hold n shown records on each side (frames are small).
  size_t lo = f, hi = f + 1;
  auto shown = [&](size_t from, size_t to) {
    size_t k = 0;
    for (size_t i = from; i < to; ++i) {
      reader.ReadFrame(i, &scratch);
      for (const auto& r : scratch) k += !DescribeRecord(r).empty();
    }
    return k;
  };
  while (lo > 0 && shown(lo, f + 1) < n + 1 && f + 1 - lo < 64) --lo;
  while (hi < reader.frames().size() && shown(f, hi) < n + 1 && hi - f < 64) ++hi;
  for (size_t i = lo; i < hi; ++i) {
    reader.ReadFrame(i, &scratch);
    for (auto& r : scratch)
      if (!DescribeRecord(r).empty()) records.push_back(std::move(r));
  }
  const auto mid = std::lower_bound(records.begin(), records.end(), around,
                                    [](const log::Record& r, uint64_t ic) { return r.icount < ic; });
  const auto from = mid - std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(n), mid - records.begin());
  const auto to = mid + std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(n), records.end() - mid);
  std::string out;
  for (auto it = from; it != to; ++it) {
    if (it == mid) out += fmt::format("  --- here: icount {} ---\n", around);
    out += fmt::format("  icount {:>12}  {}\n", it->icount, DescribeRecord(*it));
  }
  if (mid == to) out += fmt::format("  --- here: icount {} ---\n", around);
  if (records.empty()) out += "  (no logged inputs near here)\n";
  return out;
}

std::string GdbServer::MonitorText(const std::string& command, const TimeTravel::Interrupt& interrupt) {
  const std::vector<std::string> w = Words(command);
  if (w.empty() || w[0] == "help") {
    return "vmrr monitor commands:\n"
           "  icount                 where the replay is (instructions retired since power-on)\n"
           "  goto ICOUNT|begin|end  move there (then: maint flush register-cache)\n"
           "  events [N]             the N (default 10) logged inputs and interrupts either side of here\n"
           "  who-wrote ADDR [LEN]   the last instruction before here that wrote [ADDR, ADDR+LEN)\n"
           "  help                   this text\n";
  }
  if (w[0] == "icount") {
    return fmt::format("icount {} (recording: {} .. {})\n", tt_.icount(), tt_.begin_icount(), tt_.end_icount());
  }
  if (w[0] == "goto") {
    std::optional<uint64_t> ic = w.size() == 2 ? ParseNumber(w[1]) : std::nullopt;
    if (w.size() == 2 && w[1] == "end") ic = tt_.end_icount();
    if (w.size() == 2 && w[1] == "begin") ic = tt_.begin_icount();
    if (!ic) return "usage: monitor goto ICOUNT|begin|end\n";
    const TravelStop s = tt_.GoTo(*ic);
    last_stop_ = s;
    return fmt::format("at icount {}{}\n", s.icount,
                       s.icount != *ic ? " (the recording's edge)" : "");
  }
  if (w[0] == "events") {
    const std::optional<uint64_t> n = w.size() >= 2 ? ParseNumber(w[1]) : std::optional<uint64_t>(10);
    if (!n || w.size() > 2) return "usage: monitor events [N]\n";
    return Events(tt_.icount(), std::min<uint64_t>(*n, 1000));
  }
  if (w[0] == "who-wrote") {
    const std::optional<uint64_t> addr = w.size() >= 2 ? ParseNumber(w[1]) : std::nullopt;
    const std::optional<uint64_t> len = w.size() >= 3 ? ParseNumber(w[2]) : std::optional<uint64_t>(1);
    if (!addr || !len || *len == 0 || w.size() > 3) return "usage: monitor who-wrote ADDR [LEN]\n";
    const uint64_t now = tt_.icount();
    const std::optional<WatchHit> h = tt_.LastWriteBefore(*addr, *len, interrupt);
    if (!h) return fmt::format("no write to [{:#x}, {:#x}) between icount {} and here (icount {})\n", *addr,
                               *addr + *len, tt_.begin_icount(), now);
    tt_.GoTo(h->icount);
    const Disassembly d = DisassembleAtRip(tt_.machine());
    tt_.GoTo(now);
    return fmt::format("icount {}  rip {:#x}  {}  (wrote {:#x})\n", h->icount, h->rip,
                       d.decoded ? d.text : "(not decodable)", h->address);
  }
  return "unknown monitor command '" + w[0] + "' (monitor help lists them)\n";
}

std::string GdbServer::Monitor(std::string_view hex_command, const TimeTravel::Interrupt& interrupt) {
  const std::optional<std::vector<uint8_t>> cmd = HexDecode(hex_command);
  if (!cmd) return "E01";
  std::string text;
  try {
    text = MonitorText(std::string(cmd->begin(), cmd->end()), interrupt);
  } catch (const std::exception& e) {
    text = std::string("error: ") + e.what() + "\n";
  }
  return HexEncode(text);
}

std::optional<std::string> GdbServer::Handle(std::string_view p, const TimeTravel::Interrupt& interrupt) {
  if (p.empty()) return "";
  try {
    switch (p[0]) {
      case '?': return StopReply(last_stop_);
      case 'g': {
        const CpuState& st = tt_.machine().cpu().state();
        return EncodeGPacket(st, FpuViewOf(st));
      }
      case 'p': {
        const std::optional<uint64_t> n = ParseHexU64(p.substr(1));
        if (!n || *n > 0xffff) return "E01";
        const CpuState& st = tt_.machine().cpu().state();
        const std::optional<std::string> v = EncodeRegister(st, static_cast<unsigned>(*n), FpuViewOf(st));
        return v ? *v : "E01";
      }
      case 'G': case 'P': case 'M': case 'X': return std::string(kReadOnly);
      case 'm': return ReadMemory(p.substr(1));
      case 'Z': case 'z': return Breakpoint(p);
      case 'c': case 'C': return Resume('c', interrupt);
      case 's': case 'S': return Resume('s', interrupt);
      case 'b':
        if (p == "bc") return StopReply(tt_.ContinueBackward(interrupt));
        if (p == "bs") return StopReply(tt_.StepBackward());
        return "";
      case 'H': return "OK";
      case 'T': return "OK";
      case 'D': detached_ = true; return "OK";
      case 'k': detached_ = true; return std::nullopt;
      default: break;
    }
    if (StartsWith(p, "qSupported"))
      return fmt::format("PacketSize={:x};QStartNoAckMode+;qXfer:features:read+;swbreak+;hwbreak+;"
                         "vContSupported+;ReverseStep+;ReverseContinue+", kPacketSize);
    if (p == "QStartNoAckMode") {
      no_ack_ = true;
      return "OK";
    }
    if (StartsWith(p, "qXfer:features:read:")) {
      const std::optional<XferRequest> x = ParseXferFeaturesRead(p);
      if (!x) return "E01";
      if (x->annex != "target.xml") return "E00";
      return XferRead(TargetXml(), x->offset, std::min<uint64_t>(x->length, kPacketSize - 1));
    }
    if (StartsWith(p, "vCont")) return VCont(p.substr(5), interrupt);
    if (StartsWith(p, "qRcmd,")) return Monitor(p.substr(6), interrupt);
    if (p == "qAttached") return "1";
    if (p == "qC") return "QC01";
    if (p == "qfThreadInfo") return "m01";
    if (p == "qsThreadInfo") return "l";
    if (StartsWith(p, "qSymbol")) return "OK";
    if (StartsWith(p, "vKill")) {
      detached_ = true;
      return "OK";
    }
    return "";  // not supported: gdb knows what an empty reply means
  } catch (const std::exception& e) {
    // A replay failure (divergence, damaged log) must not kill the session: gdb gets an
    // error reply carrying the message.
    return std::string("E.") + e.what();
  }
}

uint64_t GdbServer::Serve(int fd) {
  GdbPacketReader reader(kPacketSize);
  std::deque<GdbEvent> pending;
  uint64_t handled = 0;
  auto send = [&](std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  bool closed = false;
  auto pump = [&](int timeout_ms) {
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, timeout_ms);
    if (r <= 0) return;
    uint8_t buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) return;
      closed = true;
      return;
    }
    reader.Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    while (auto e = reader.Next()) pending.push_back(std::move(*e));
  };
  // While a continue runs: a Ctrl-C (0x03) stops it; other bytes wait for later.
  const TimeTravel::Interrupt interrupt = [&] {
    pump(0);
    if (closed) return true;
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (it->kind == GdbEvent::Kind::kInterrupt) {
        pending.erase(it);
        return true;
      }
    }
    return false;
  };
  while (!closed && !detached_) {
    if (pending.empty()) {
      pump(-1);
      continue;
    }
    GdbEvent e = std::move(pending.front());
    pending.pop_front();
    switch (e.kind) {
      case GdbEvent::Kind::kPacket: {
        if (!no_ack_ && !send("+")) return handled;
        ++handled;
        const std::optional<std::string> reply = Handle(e.payload, interrupt);
        if (reply && !send(EncodeGdbPacket(*reply))) return handled;
        break;
      }
      case GdbEvent::Kind::kBadChecksum:
      case GdbEvent::Kind::kOversized:
      case GdbEvent::Kind::kMalformed:
        if (!no_ack_ && !send("-")) return handled;
        break;
      case GdbEvent::Kind::kInterrupt:  // a Ctrl-C that crossed the stop reply: nothing runs
      case GdbEvent::Kind::kAck:
      case GdbEvent::Kind::kNack:
        break;
    }
  }
  return handled;
}

}  // namespace vmrr::analysis
