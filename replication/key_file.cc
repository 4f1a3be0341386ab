// Key files: 64 hex digits (plus optional trailing whitespace) or 32 raw bytes.
#include "replication/key_file.h"

#include <fstream>
#include <iterator>

namespace vmrr::link {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Key ParseKey(const std::string& contents, const std::string& name) {
  Key key{};
  std::string text = contents;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.pop_back();
  if (text.size() == 2 * kKeyBytes) {
    bool hex = true;
    for (char c : text) hex = hex && HexValue(c) >= 0;
    if (hex) {
      for (size_t i = 0; i < kKeyBytes; ++i)
        key[i] = static_cast<uint8_t>(HexValue(text[2 * i]) << 4 | HexValue(text[2 * i + 1]));
      return key;
    }
  }
  if (contents.size() == kKeyBytes) {
    for (size_t i = 0; i < kKeyBytes; ++i) key[i] = static_cast<uint8_t>(contents[i]);
    return key;
  }
  throw LinkError(name + ": a key file holds 64 hex digits (e.g. from `od -An -tx1 -N32 /dev/urandom | tr -d ' \\n'`) "
                  "or exactly 32 raw bytes; this one has " + std::to_string(contents.size()) + " bytes");
}

Key LoadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LinkError(path + ": cannot read the key file");
  std::string contents;
  // A key file is small: read at most a little more than the longest valid one.
  char buf[256];
  in.read(buf, sizeof buf);
  contents.assign(buf, static_cast<size_t>(in.gcount()));
  if (contents.size() == sizeof buf) throw LinkError(path + ": too long for a key file");
  return ParseKey(contents, path);
}

}  // namespace vmrr::link
