// End-to-end record/replay figures, measured side by side in one run: for each guest, `vmrr
// run`, `vmrr record` and `vmrr replay` are timed as whole processes (wall clock, like
// /usr/bin/time), interleaved run by run so that load on the host hits all three alike, and
// the medians give the ratios the record/replay issue sets targets for:
//   record/run     record overhead                          target <= 1.05
//   replay/record  replay speed (CPU-bound guest)           target <= 1.0
//                  (timer guest, host clock, idle skipped)  target <= 0.2
//   bytes per guest-second of the log's event stream (frames other than the initial
//   snapshot; timer guest: <= 2 KB/s); header, snapshot and footer are printed apart
// Where qemu-system-x86_64 is installed, the same guest image (the Multiboot build) runs under
// QEMU live (TCG), with `-icount shift=auto,rr=record` and `rr=replay`, and the same figures
// are printed next to vmrr's.
//
// Usage: bench_rr [REPETITIONS]   (default 5)
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <variant>
#include <vector>

#include "logformat/log_reader.h"

namespace {

struct Timed {
  double seconds = 0;
  int status = -1;
};

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs argv with stdout/stderr sent to /dev/null; returns wall seconds and the exit status.
Timed RunProcess(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const double start = Now();
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* null = std::fopen("/dev/null", "w");
    if (null) {
      dup2(fileno(null), 1);
      dup2(fileno(null), 2);
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  Timed t;
  t.seconds = Now() - start;
  t.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return t;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

struct LogFigures {
  uint64_t bytes = 0;
  uint64_t snapshot_bytes = 0;  // frames holding the initial snapshot
  uint64_t stream_bytes = 0;    // every other frame (header + payload): the event stream
  double guest_seconds = 0;
};

// Guest time covered by a log: host mode, from the first to the last time sample; icount
// mode, 1 ns per instruction.
LogFigures Inspect(const std::string& path, bool host_clock) {
  LogFigures f;
  f.bytes = FileSize(path);
  const vmrr::log::LogReader reader = vmrr::log::LogReader::Open(path);
  int64_t first_ns = 0, last_ns = 0;
  bool have_sample = false;
  uint64_t last_icount = 0;
  std::vector<vmrr::log::Record> records;
  for (size_t i = 0; i < reader.frames().size(); ++i) {
    const vmrr::log::FrameInfo& frame = reader.frames()[i];
    last_icount = std::max(last_icount, frame.header.last_icount);
    reader.ReadFrame(i, &records);
    bool snapshot = false;
    for (const vmrr::log::Record& r : records) {
      if (std::holds_alternative<vmrr::log::SnapshotChunk>(r.body)) snapshot = true;
      if (const auto* t = std::get_if<vmrr::log::TimeSample>(&r.body)) {
        if (!have_sample) first_ns = t->host_ns;
        last_ns = t->host_ns;
        have_sample = true;
      }
    }
    const uint64_t size = vmrr::log::kFrameHeaderSize + frame.header.stored_size;
    (snapshot ? f.snapshot_bytes : f.stream_bytes) += size;
  }
  f.guest_seconds = host_clock ? static_cast<double>(last_ns - first_ns) * 1e-9
                               : static_cast<double>(last_icount) * 1e-9;
  return f;
}

struct Case {
  const char* guest;
  bool host_clock;
  const char* note;
};

bool HaveQemu() { return RunProcess({"qemu-system-x86_64", "--version"}).status == 0; }

std::vector<std::string> QemuArgs(const std::string& image) {
  return {"qemu-system-x86_64", "-M", "pc", "-m", "128", "-display", "none", "-nodefaults",
          "-serial", "null", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
          "-kernel", image};
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::string vmrr = VMRR_BINARY;
  const std::string guests = VMRR_GUEST_DIR;
  // Logs go to a fresh directory under $TMPDIR (removed at the end), never the working one.
  const char* tmp = std::getenv("TMPDIR");
  std::string dir_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/vmrr-bench-rr.XXXXXX";
  if (!mkdtemp(dir_template.data())) {
    std::perror("bench_rr: mkdtemp");
    return 1;
  }
  const std::string dir = dir_template;
  const bool qemu = HaveQemu();
  std::printf("# %d interleaved repetitions per command; medians of wall time\n", reps);
  if (!qemu) std::printf("# qemu-system-x86_64 not installed: QEMU columns skipped\n");

  const Case cases[] = {
      {"timer", true, "host clock, mostly idle: replay skips the idle time"},
      {"stress", false, "icount clock, CPU-bound"},
      {"stress", true, "host clock, CPU-bound"},
  };
  int failures = 0;
  for (const Case& c : cases) {
    const std::string image = guests + "/" + c.guest + ".mb.elf";
    const std::string clock = c.host_clock ? "host" : "icount";
    const std::string log = dir + "/" + c.guest + "-" + clock + ".vlog";
    const std::string qlog = dir + "/" + c.guest + "-" + clock + ".qemu-rr";
    std::vector<double> run, record, replay, qrun, qrecord, qreplay;
    for (int i = 0; i < reps; ++i) {
      const Timed a = RunProcess({vmrr, "run", "--clock", clock, image});
      const Timed b = RunProcess({vmrr, "record", "--clock", clock, "-o", log, image});
      const Timed d = RunProcess({vmrr, "replay", log});
      if (a.status != 1 || b.status != 1 || d.status != 0) {
        std::fprintf(stderr, "bench_rr: %s: unexpected status run=%d record=%d replay=%d\n",
                     c.guest, a.status, b.status, d.status);
        ++failures;
      }
      run.push_back(a.seconds);
      record.push_back(b.seconds);
      replay.push_back(d.seconds);
      if (qemu) {
        std::vector<std::string> live = QemuArgs(image), rec = QemuArgs(image),
                                 rep = QemuArgs(image);
        if (!c.host_clock) live.insert(live.end(), {"-icount", "shift=0"});
        rec.insert(rec.end(), {"-icount", "shift=auto,rr=record,rrfile=" + qlog});
        rep.insert(rep.end(), {"-icount", "shift=auto,rr=replay,rrfile=" + qlog});
        qrun.push_back(RunProcess(live).seconds);
        qrecord.push_back(RunProcess(rec).seconds);
        qreplay.push_back(RunProcess(rep).seconds);
      }
    }
    const LogFigures f = Inspect(log, c.host_clock);
    // The rate of the event stream; the file adds the header, the initial snapshot and the
    // footer, fixed costs that do not grow with the run.
    const double steady =
        f.guest_seconds > 0 ? static_cast<double>(f.stream_bytes) / f.guest_seconds : 0;
    std::printf(
        "case=%s clock=%s vmrr_run_s=%.3f vmrr_record_s=%.3f vmrr_replay_s=%.3f "
        "record/run=%.3f replay/record=%.3f log_bytes=%lu snapshot_bytes=%lu stream_bytes=%lu "
        "guest_s=%.3f stream_bytes_per_guest_s=%.0f  # %s\n",
        c.guest, clock.c_str(), Median(run), Median(record), Median(replay),
        Median(record) / Median(run), Median(replay) / Median(record),
        static_cast<unsigned long>(f.bytes), static_cast<unsigned long>(f.snapshot_bytes),
        static_cast<unsigned long>(f.stream_bytes), f.guest_seconds, steady, c.note);
    if (qemu) {
      const uint64_t qbytes = FileSize(qlog);
      std::printf(
          "case=%s clock=%s qemu_run_s=%.3f qemu_record_s=%.3f qemu_replay_s=%.3f "
          "qemu_record/run=%.3f qemu_replay/record=%.3f qemu_log_bytes=%lu "
          "vmrr/qemu_record_s=%.3f vmrr/qemu_replay_s=%.3f vmrr/qemu_log_bytes=%.3f\n",
          c.guest, clock.c_str(), Median(qrun), Median(qrecord), Median(qreplay),
          Median(qrecord) / Median(qrun), Median(qreplay) / Median(qrecord),
          static_cast<unsigned long>(qbytes), Median(record) / Median(qrecord),
          Median(replay) / Median(qreplay),
          qbytes ? static_cast<double>(f.bytes) / static_cast<double>(qbytes) : 0.0);
    }
  }
  RunProcess({"rm", "-rf", dir});
  return failures == 0 ? 0 : 1;
}
