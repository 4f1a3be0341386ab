// QEMU's firmware configuration device (fw_cfg) as QEMU presents it on x86 (QEMU
// docs/specs/fw_cfg.rst, hw/nvram/fw_cfg.c), in one 12-port window at 0x510:
//   offset 0   selector: a 16-bit write selects an item and resets the data offset to 0
//              (an 8-bit write there, as at offset 1, is a data write: ignored, as in QEMU);
//   offset 1   data: each 8-bit read (at offset 0 or 1) returns the next byte of the
//              selected item, 0 past its end or for an item that does not exist;
//   offset 4   DMA address, big-endian, two 32-bit halves: the write of the low half (offset
//              8) runs the FWCfgDmaAccess at that guest-physical address (select, read, skip;
//              writes are refused: every item is read-only). Reading the 8 bytes gives
//              "QEMU CFG".
// The items are fixed when the device is built (from the machine configuration only, so a
// replay rebuilds the same ones); the selector, the data offset and the DMA address's high
// half are the device's state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/guest_memory.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

class FwCfg : public BusDevice, public Device {
 public:
  // Selector keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h).
  static constexpr uint16_t kSignature = 0x0000, kId = 0x0001, kUuid = 0x0002,
                            kRamSize = 0x0003, kNoGraphic = 0x0004, kNbCpus = 0x0005,
                            kBootMenu = 0x000e, kMaxCpus = 0x000f, kFileDir = 0x0019,
                            kFileFirst = 0x0020;
  static constexpr uint16_t kWriteChannel = 0x4000, kArchLocal = 0x8000;
  static constexpr uint16_t kEntryMask = static_cast<uint16_t>(~(kWriteChannel | kArchLocal));
  static constexpr unsigned kFileSlots = 0x20;     // QEMU's default x-file-slots
  static constexpr unsigned kFileNameBytes = 56;   // FWCfgFile.name, NUL included
  // FW_CFG_ID feature bits.
  static constexpr uint32_t kIdTraditional = 1u << 0, kIdDma = 1u << 1;
  // FWCfgDmaAccess.control bits.
  static constexpr uint32_t kDmaError = 1u << 0, kDmaRead = 1u << 1, kDmaSkip = 1u << 2,
                            kDmaSelect = 1u << 3, kDmaWrite = 1u << 4;
  static constexpr uint64_t kDmaSignature = 0x51454d5520434647ull;  // "QEMU CFG", big-endian
  // Window offsets.
  static constexpr uint64_t kSelectorOffset = 0, kDataOffset = 1, kDmaOffset = 4;
  static constexpr unsigned kPortCount = 12;

  struct File {
    std::string name;  // at most kFileNameBytes - 1 bytes, no NUL
    std::vector<uint8_t> data;
  };

  // `items`: numbered items (keys below kFileFirst, or architecture-specific keys with
  // kArchLocal); `files`: named items, listed in the file directory sorted by name (QEMU's
  // order for current machine types) at selectors kFileFirst, kFileFirst + 1, ... The
  // signature, the ID (traditional interface and DMA) and the file directory are the device's
  // own. Throws std::invalid_argument for a key the device owns or cannot hold, more than
  // kFileSlots files, a bad or duplicate file name.
  FwCfg(GuestMemory& mem, std::map<uint16_t, std::vector<uint8_t>> items, std::vector<File> files);

  std::string_view name() const override { return "fw-cfg"; }

  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  // The bytes of the item a selector key reaches (nullptr: none; reads give 0).
  const std::vector<uint8_t>* Item(uint16_t key) const;
  uint16_t selector() const { return selector_; }
  uint32_t data_offset() const { return offset_; }

  // Section "FWCF" version 1: selector, data offset, DMA address. A data offset beyond the
  // selected item's end is refused.
  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  void Select(uint16_t key);
  void DmaTransfer();

  GuestMemory& mem_;
  std::map<uint16_t, std::vector<uint8_t>> items_;  // by key & (kArchLocal | kEntryMask)
  uint16_t selector_ = kSignature;                  // QEMU's reset selects the signature
  uint32_t offset_ = 0;
  uint64_t dma_address_ = 0;
};

}  // namespace vmrr
