// Fuzz target: the session configuration a log header carries (DecodeSessionConfig). Any
// byte string either decodes to a configuration that re-encodes and decodes to itself, or is
// rejected with SessionConfigError; nothing else may happen.
#include <cstdint>
#include <cstdlib>

#include "hv-hooks/session/session_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmrr::SessionConfig c;
  try {
    c = vmrr::DecodeSessionConfig(std::span<const uint8_t>(data, size));
  } catch (const vmrr::SessionConfigError&) {
    return 0;
  }
  if (!(vmrr::DecodeSessionConfig(vmrr::EncodeSessionConfig(c)) == c)) std::abort();
  return 0;
}
