// log_tamper IN OUT KIND N: rewrites a vmrr log with the N-th (0-based) record of KIND
// changed (TimeSample: +1 s; ConsoleIn/NetRx/Entropy: first byte inverted; IrqDelivered:
// vector ^ 1; Output/Digest: digest ^ 1), re-encoding
// every frame so that checksums hold: a log that is whole but lies about one input. Prints
// the icount of the changed record. For the replay divergence tests.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "logformat/log_reader.h"
#include "logformat/log_writer.h"

using namespace vmrr::log;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s IN OUT KIND N\n", argv[0]);
    return 2;
  }
  LogReader in = LogReader::Open(argv[1]);
  const uint8_t kind = KindFromName(argv[3]);
  const long target = std::atol(argv[4]);
  if (!kind) {
    std::fprintf(stderr, "unknown kind %s\n", argv[3]);
    return 2;
  }
  auto out = LogWriter::CreateFile(argv[2], in.header());
  long seen = 0;
  bool done = false;
  std::vector<uint8_t> blob;
  std::vector<Record> records;
  for (size_t f = 0; f < in.frames().size(); ++f) {
    in.ReadFrame(f, &records);
    for (Record& r : records) {
      if (auto* c = std::get_if<SnapshotChunk>(&r.body)) {
        if (c->offset == 0) blob.clear();
        blob.insert(blob.end(), c->bytes.begin(), c->bytes.end());
        continue;
      }
      if (auto* cp = std::get_if<Checkpoint>(&r.body)) {
        out->AppendSnapshot(r.icount, cp->snapshot_id, blob, cp->state_digest);
        continue;
      }
      if (auto* e = std::get_if<End>(&r.body)) {
        out->Finish(r.icount, *e);
        continue;
      }
      if (r.kind_number() == kind && seen++ == target) {
        if (auto* t = std::get_if<TimeSample>(&r.body)) t->host_ns += 1'000'000'000;
        if (auto* c = std::get_if<ConsoleIn>(&r.body); c && !c->bytes.empty()) c->bytes[0] ^= 0xff;
        if (auto* n = std::get_if<NetRx>(&r.body); n && !n->frame.empty()) n->frame[0] ^= 0xff;
        if (auto* e = std::get_if<Entropy>(&r.body); e && !e->bytes.empty()) e->bytes[0] ^= 0xff;
        if (auto* i = std::get_if<IrqDelivered>(&r.body)) i->vector ^= 1;
        if (auto* o = std::get_if<Output>(&r.body)) o->digest ^= 1;
        if (auto* d = std::get_if<Digest>(&r.body)) d->hash ^= 1;
        std::printf("%" PRIu64 "\n", r.icount);
        done = true;
      }
      out->Append(r);
    }
  }
  if (!out->finished()) out->Flush();
  if (!done) {
    std::fprintf(stderr, "no record %ld of kind %s\n", target, argv[3]);
    return 1;
  }
  return 0;
}
