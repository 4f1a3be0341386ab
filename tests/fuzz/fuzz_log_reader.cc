// libFuzzer target for the log reader: any byte string is opened as a log, every frame is
// decoded, every snapshot reassembled and a few seeks made. Errors must be LogErrors; a
// crash, a hang or an allocation beyond the format's limits is a bug.
#include <cstdint>
#include <vector>

#include "logformat/log_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmrr::log;
  try {
    LogReader reader = LogReader::FromBytes(std::vector<uint8_t>(data, data + size), "fuzz");
    std::vector<Record> records;
    for (size_t i = 0; i < reader.frames().size(); ++i) {
      try {
        reader.ReadFrame(i, &records);
      } catch (const LogError&) {
      }
    }
    for (const CheckpointInfo& cp : reader.checkpoints()) {
      try {
        (void)reader.ReadSnapshot(cp);
      } catch (const LogError&) {
      }
    }
    (void)reader.FindFrame(0);
    (void)reader.FindFrame(UINT64_MAX);
  } catch (const LogError&) {
  }
  return 0;
}
