// `vmrr inspect LOG`: what a log holds (header, icount range, frames, records per kind,
// compression) and whether it is whole; --records lists records, --verify checks every
// checksum and snapshot, --json prints the same for tools.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "logformat/log_reader.h"
#include "logformat/record_codec.h"

namespace vmrr::cli {
namespace {

using nlohmann::json;
namespace lf = vmrr::log;

struct InspectOptions {
  std::string path;
  bool records = false;
  bool verify = false;
  bool json = false;
  uint64_t max_records = UINT64_MAX;
};

std::string HexBytes(const std::vector<uint8_t>& b, size_t max = 16) {
  const size_t n = std::min(b.size(), max);
  return fmt::format("{:02x}{}", fmt::join(b.begin(), b.begin() + n, ""), b.size() > max ? "..." : "");
}

std::string IsoTime(uint64_t unix_ns) {
  std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000ull);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The record's fields as a JSON object (the human listing prints the same fields).
json RecordFields(const lf::Record& r) {
  json j;
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, lf::TimeSample>) {
          j["host_ns"] = b.host_ns;
        } else if constexpr (std::is_same_v<T, lf::ConsoleIn> || std::is_same_v<T, lf::Entropy>) {
          j["bytes"] = b.bytes.size();
          j["data"] = HexBytes(b.bytes);
        } else if constexpr (std::is_same_v<T, lf::NetRx>) {
          j["bytes"] = b.frame.size();
          j["data"] = HexBytes(b.frame);
        } else if constexpr (std::is_same_v<T, lf::IrqDelivered>) {
          j["vector"] = b.vector;
        } else if constexpr (std::is_same_v<T, lf::Output>) {
          j["channel"] = b.channel == lf::OutputChannel::kConsole ? "console" : "net";
          j["total_bytes"] = b.total_bytes;
          j["digest"] = fmt::format("{:016x}", b.digest);
        } else if constexpr (std::is_same_v<T, lf::Digest>) {
          j["scope"] = b.scope == lf::DigestScope::kCpu ? "cpu" : "machine";
          j["hash"] = fmt::format("{:016x}", b.hash);
        } else if constexpr (std::is_same_v<T, lf::Checkpoint>) {
          j["snapshot_id"] = b.snapshot_id;
          j["snapshot_size"] = b.snapshot_size;
          j["state_digest"] = fmt::format("{:016x}", b.state_digest);
        } else if constexpr (std::is_same_v<T, lf::SnapshotChunk>) {
          j["snapshot_id"] = b.snapshot_id;
          j["offset"] = b.offset;
          j["total_size"] = b.total_size;
          j["bytes"] = b.bytes.size();
        } else if constexpr (std::is_same_v<T, lf::Marker>) {
          j["text"] = b.text;
        } else if constexpr (std::is_same_v<T, lf::End>) {
          j["reason"] = lf::EndReasonName(b.reason);
          j["exit_code"] = b.exit_code;
          j["final_digest"] = fmt::format("{:016x}", b.final_digest);
        } else if constexpr (std::is_same_v<T, lf::IdleWake>) {
          j["input"] = b.input;
        } else {
          j["bytes"] = b.payload.size();
          j["data"] = HexBytes(b.payload);
        }
      },
      r.body);
  return j;
}

std::string FieldsText(const json& fields) {
  std::string s;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    if (!s.empty()) s += ' ';
    s += it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
  }
  return s;
}

struct KindStats {
  uint64_t count = 0;
  uint64_t bytes = 0;  // encoded bytes before compression
};

int RunInspect(const InspectOptions& opt) {
  lf::LogReader reader = [&] { return lf::LogReader::Open(opt.path); }();
  const lf::LogHeader& h = reader.header();

  std::map<uint8_t, KindStats> kinds;  // ordered by kind number: stable output
  uint64_t records = 0, raw = 0, stored = 0, listed = 0;
  uint64_t first_icount = 0, last_icount = 0;
  std::string damage;
  uint64_t damage_offset = 0;
  json record_list = json::array();
  std::vector<lf::Record> frame;
  std::vector<uint8_t> scratch;
  for (size_t i = 0; i < reader.frames().size(); ++i) {
    const lf::FrameInfo& f = reader.frames()[i];
    try {
      reader.ReadFrame(i, &frame);
    } catch (const lf::LogError& e) {
      damage = e.what();
      damage_offset = e.offset();
      break;
    }
    if (records == 0) first_icount = f.header.first_icount;
    last_icount = f.header.last_icount;
    raw += f.header.raw_size;
    stored += f.header.stored_size + lf::kFrameHeaderSize;
    lf::RecordEncoder encoder(f.header.first_icount);
    for (const lf::Record& r : frame) {
      scratch.clear();
      encoder.Encode(r, scratch);
      KindStats& k = kinds[r.kind_number()];
      ++k.count;
      k.bytes += scratch.size();
      ++records;
      if (opt.records && listed < opt.max_records) {
        ++listed;
        json fields = RecordFields(r);
        if (opt.json) {
          record_list.push_back({{"icount", r.icount}, {"kind", lf::KindName(r.kind_number())}, {"fields", fields}});
        } else {
          std::printf("%20" PRIu64 "  %-13s %s\n", r.icount, lf::KindName(r.kind_number()).c_str(),
                      FieldsText(fields).c_str());
        }
      }
    }
  }
  if (damage.empty() && opt.verify) {
    for (const lf::CheckpointInfo& cp : reader.checkpoints()) {
      try {
        (void)reader.ReadSnapshot(cp);
      } catch (const lf::LogError& e) {
        damage = e.what();
        damage_offset = e.offset();
        break;
      }
    }
  }
  const lf::TailReport& tail = reader.tail();
  if (damage.empty() && tail.state == lf::TailState::kDamaged) {
    damage = tail.message;
    damage_offset = tail.offset;
  }

  const char* state = !damage.empty() ? "damaged" : lf::TailStateName(tail.state);
  if (opt.json) {
    json j;
    j["path"] = opt.path;
    j["file_size"] = reader.file_size();
    j["format"] = {{"major", h.major}, {"minor", h.minor}};
    j["engine_version"] = h.engine_version;
    j["host"] = h.host_description;
    j["created_unix_ns"] = h.creation_time_unix_ns;
    j["machine_config_bytes"] = h.machine_config.size();
    json images = json::array();
    for (const auto& img : h.images) {
      std::vector<uint8_t> hash(img.xxh128.begin(), img.xxh128.end());
      images.push_back({{"name", img.name}, {"size", img.size}, {"xxh128", HexBytes(hash, 16)}});
    }
    j["images"] = images;
    j["state"] = state;
    j["tail"] = {{"offset", tail.offset}, {"message", tail.message}};
    if (!damage.empty()) j["damage"] = {{"offset", damage_offset}, {"message", damage}};
    j["icount"] = {{"first", first_icount}, {"last", last_icount}};
    j["frames"] = reader.frames().size();
    j["checkpoints"] = reader.checkpoints().size();
    j["records"] = records;
    j["raw_bytes"] = raw;
    j["stored_bytes"] = stored;
    j["compression_ratio"] = stored ? double(raw) / double(stored) : 0.0;
    json per_kind = json::object();
    for (const auto& [kind, k] : kinds) per_kind[lf::KindName(kind)] = {{"count", k.count}, {"bytes", k.bytes}};
    j["kinds"] = per_kind;
    if (opt.records) j["record_list"] = record_list;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("log            %s (%" PRIu64 " bytes)\n", opt.path.c_str(), reader.file_size());
    std::printf("format         %u.%u, written by %s on %s at %s\n", h.major, h.minor, h.engine_version.c_str(),
                h.host_description.c_str(), IsoTime(h.creation_time_unix_ns).c_str());
    std::printf("machine        %zu bytes of configuration\n", h.machine_config.size());
    for (const auto& img : h.images) {
      std::vector<uint8_t> hash(img.xxh128.begin(), img.xxh128.end());
      std::printf("image          %s, %" PRIu64 " bytes, xxh128 %s\n", img.name.c_str(), img.size,
                  HexBytes(hash, 16).c_str());
    }
    std::printf("state          %s\n", state);
    std::printf("icount         %" PRIu64 " .. %" PRIu64 "\n", first_icount, last_icount);
    std::printf("frames         %zu, %zu checkpoints\n", reader.frames().size(), reader.checkpoints().size());
    std::printf("records        %" PRIu64 ", %" PRIu64 " bytes raw, %" PRIu64 " bytes stored (raw/stored %.2f)\n",
                records, raw, stored, stored ? double(raw) / double(stored) : 0.0);
    for (const auto& [kind, k] : kinds)
      std::printf("  %-13s %12" PRIu64 " records %14" PRIu64 " bytes  %6.2f bytes/record\n",
                  lf::KindName(kind).c_str(), k.count, k.bytes, double(k.bytes) / double(k.count));
    if (opt.verify && damage.empty() && tail.state == lf::TailState::kComplete)
      std::printf("verify         every frame checksum, record and snapshot is valid\n");
  }
  std::fflush(stdout);

  if (!damage.empty()) {
    std::fprintf(stderr, "vmrr inspect: %s: damaged at offset %" PRIu64 ": %s\n", opt.path.c_str(), damage_offset,
                 damage.c_str());
    return kExitDamaged;
  }
  if (tail.state != lf::TailState::kComplete) {
    std::fprintf(stderr, "vmrr inspect: %s: log is %s: %s\n", opt.path.c_str(), state, tail.message.c_str());
    return kExitTruncated;
  }
  return kExitOk;
}

}  // namespace

void AddInspectCommand(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Show what a log holds: header, icount range, frames, records and bytes per kind,\n"
      "compression, and whether it is complete. Exit status: 0 complete, 3 cannot read,\n"
      "4 not a log, 5 newer format, 6 truncated or unfinished, 7 damaged.");
  cmd->add_option("LOG", opt->path, "log file written by `vmrr record`")->required();
  cmd->add_flag("--records", opt->records, "list every record (icount, kind, fields)");
  cmd->add_option("--max-records", opt->max_records, "list at most this many records");
  cmd->add_flag("--verify", opt->verify, "also reassemble every snapshot; say so when all is valid");
  cmd->add_flag("--json", opt->json, "print JSON for tools instead of text");
  cmd->callback([opt, exit_code] {
    try {
      *exit_code = RunInspect(*opt);
    } catch (const log::LogError& e) {
      std::fprintf(stderr, "vmrr inspect: %s\n", e.what());
      *exit_code = ExitCodeFor(e.code());
    }
  });
}

}  // namespace vmrr::cli
