// Writes small hand-assembled kernels (and malformed ones) for the `vmrr run` integration test:
// make_test_kernels DIR
#include <cstdio>
#include <string>
#include <vector>

#include "tests/unit/machine/test_images.h"

namespace {

bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_test_kernels DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  using vmrr::test::CodeGuest;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {
      {"hello.elf", CodeGuest(vmrr::test::kHelloCode)},          // "Hi", status 7
      {"cli_hlt.elf", CodeGuest({0x90, 0xf4})},                  // nop; hlt with IF=0
      {"sti_hlt.elf", CodeGuest({0xfb, 0xf4, 0xeb, 0xfd})},      // sti; hlt; jmp hlt: waits for input
      {"ud2.elf", CodeGuest({0x90, 0x0f, 0x0b})},                // triple fault
      {"spin.elf", CodeGuest({0x48, 0xff, 0xc0, 0xeb, 0xfb})},   // inc rax; jmp: forever
      {"timer.elf", vmrr::test::TimerGuest(false)},              // "TTTTT", status 1
  };
  // A Multiboot a.out-kludge image at 0x8000 (bss to 0x8800), as QEMU's -kernel takes it:
  // checks EAX is the Multiboot magic and EBX (multiboot_info) lies past its image, prints
  // "Hi" and exits with status 7; status 255 (debug-exit 0x7f) if either check fails.
  std::vector<uint8_t> low = vmrr::test::MultibootHeader(0x10000, 0x8000, 0x8000, 0, 0x8800, 0x8020);
  const std::vector<uint8_t> low_code = {
      0x3d, 0x02, 0xb0, 0xad, 0x2b,        // cmp eax, 0x2badb002
      0x75, 0x17,                          // jne bad
      0x81, 0xfb, 0x00, 0x88, 0x00, 0x00,  // cmp ebx, 0x8800
      0x72, 0x0f,                          // jb bad
      0x66, 0xba, 0xf8, 0x03,              // mov dx, 0x3f8
      0xb0, 'H', 0xee, 0xb0, 'i', 0xee,    // out 'H', 'i'
      0xb0, 0x03, 0xe6, 0xf4, 0xf4,        // debug-exit 3 (status 7); hlt
      0xb0, 0x7f, 0xe6, 0xf4, 0xf4};       // bad: debug-exit 0x7f (status 255); hlt
  low.insert(low.end(), low_code.begin(), low_code.end());
  files.emplace_back("mb_low.bin", low);
  std::vector<uint8_t> truncated = CodeGuest({0x90});
  truncated.resize(80);
  files.emplace_back("truncated.elf", truncated);
  std::vector<uint8_t> outside = CodeGuest({0x90});
  vmrr::test::Put64(outside, 64 + 24, 0x40000000);  // p_paddr at 1 GiB: outside a 64M machine
  vmrr::test::Put64(outside, 64 + 16, 0x40000000);
  vmrr::test::Put64(outside, 24, 0x40000000);
  files.emplace_back("outside.elf", outside);
  files.emplace_back("junk.bin", std::vector<uint8_t>{'n', 'o', 't', ' ', 'a', 'n', ' ', 'E', 'L', 'F'});
  files.emplace_back("empty.bin", std::vector<uint8_t>{});
  for (const auto& [name, bytes] : files) {
    if (!WriteFile(dir + "/" + name, bytes)) {
      std::fprintf(stderr, "make_test_kernels: cannot write %s/%s\n", dir.c_str(), name.c_str());
      return 3;
    }
  }
  return 0;
}
