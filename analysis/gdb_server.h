// GdbServer: the gdb remote serial protocol (gdb manual, appendix "Remote Protocol") served
// over a TimeTravel replay, so that stock gdb steps and continues a recording forwards and
// backwards. One connection at a time, all-stop, one thread (the guest's one CPU).
//
// What it answers: qSupported (PacketSize, QStartNoAckMode, qXfer:features:read, swbreak,
// hwbreak, vContSupported, ReverseStep, ReverseContinue), ?, g, p, m (through the guest's
// current page tables; unmapped or non-RAM bytes end the reply, and a first byte that cannot
// be read is an error reply), vCont with c/s/C/S (and the plain c/s/C/S packets), bc, bs,
// Z0/Z1 (breakpoints that never touch guest memory), Z2/Z3/Z4 (watchpoints, any number and
// length), qRcmd (monitor commands: help, icount, goto, events, who-wrote), thread queries,
// D and k. G, P, M and X are refused with "E.<message>": a recording cannot change.
//
// Stop replies: T05 with swbreak/hwbreak, watch/rwatch/awatch:ADDR, replaylog:begin/end at
// the recording's edges; T02 after a Ctrl-C (0x03), which is looked for between slices of a
// running continue in either direction.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/gdb_packet.h"
#include "analysis/time_travel.h"

namespace vmrr::analysis {

class GdbServer {
 public:
  explicit GdbServer(TimeTravel& tt);

  // Serves the connection on `fd` (a connected socket or a pipe pair's read end = write end)
  // until gdb detaches, kills, or closes it. Returns the number of packets handled.
  uint64_t Serve(int fd);

  // One decoded packet in, the reply payload out (nullopt: no reply, as after k). `interrupt`
  // is polled while a continue runs. Exposed for tests and the fuzz target.
  std::optional<std::string> Handle(std::string_view packet, const TimeTravel::Interrupt& interrupt = {});

  bool no_ack() const { return no_ack_; }
  bool detached() const { return detached_; }

 private:
  std::string StopReply(const TravelStop& s);
  std::string ReadMemory(std::string_view args);
  std::string Breakpoint(std::string_view packet);
  std::string Resume(char action, const TimeTravel::Interrupt& interrupt);
  std::string VCont(std::string_view args, const TimeTravel::Interrupt& interrupt);
  std::string Monitor(std::string_view hex_command, const TimeTravel::Interrupt& interrupt);
  std::string MonitorText(const std::string& command, const TimeTravel::Interrupt& interrupt);
  std::string Events(uint64_t around, size_t n);
  void SyncWatchpoints();

  TimeTravel& tt_;
  bool no_ack_ = false;
  bool detached_ = false;
  TravelStop last_stop_;
  // Z1 addresses (reported as hwbreak); every Z0/Z1 address is a TimeTravel breakpoint.
  std::map<uint64_t, int> sw_breaks_, hw_breaks_;  // address -> insertions
  struct Watch {
    uint64_t addr, len;
    char type;  // '2' write, '3' read, '4' access
    bool operator==(const Watch&) const = default;
  };
  std::vector<Watch> watches_;
};

}  // namespace vmrr::analysis
