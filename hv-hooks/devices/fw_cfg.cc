// FwCfg: items and file directory, the port interface, the DMA interface, saved state.
#include "hv-hooks/devices/fw_cfg.h"

#include <algorithm>
#include <stdexcept>

namespace vmrr {

namespace {

constexpr uint16_t kKeyMask = FwCfg::kArchLocal | FwCfg::kEntryMask;

void PutBe(std::vector<uint8_t>& out, uint64_t v, unsigned n) {
  for (unsigned i = n; i-- > 0;) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t GetBe(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

uint32_t ByteSwap32(uint64_t v) {
  const auto x = static_cast<uint32_t>(v);
  return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}

}  // namespace

FwCfg::FwCfg(GuestMemory& mem, std::map<uint16_t, std::vector<uint8_t>> items, std::vector<File> files)
    : mem_(mem) {
  for (auto& [key, data] : items) {
    if ((key & kWriteChannel) || (key & kEntryMask) >= kFileFirst) {
      throw std::invalid_argument("fw_cfg: item key " + std::to_string(key) +
                                  " is not a numbered item's key");
    }
    if (key == kSignature || key == kId || key == kFileDir) {
      throw std::invalid_argument("fw_cfg: item key " + std::to_string(key) + " is the device's own");
    }
    items_[key] = std::move(data);
  }
  if (files.size() > kFileSlots) throw std::invalid_argument("fw_cfg: more than 32 files");
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.name < b.name; });
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& n = files[i].name;
    if (n.empty() || n.size() >= kFileNameBytes || n.find('\0') != std::string::npos) {
      throw std::invalid_argument("fw_cfg: bad file name '" + n + "'");
    }
    if (i > 0 && files[i - 1].name == n) throw std::invalid_argument("fw_cfg: duplicate file " + n);
    if (files[i].data.size() > UINT32_MAX) throw std::invalid_argument("fw_cfg: file too large");
  }
  items_[kSignature] = {'Q', 'E', 'M', 'U'};
  const uint32_t id = kIdTraditional | kIdDma;
  items_[kId] = {static_cast<uint8_t>(id), static_cast<uint8_t>(id >> 8),
                 static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 24)};
  // struct FWCfgFiles { be32 count; struct FWCfgFile { be32 size; be16 select; u16 reserved;
  // char name[56]; } f[]; }, sized, as QEMU's, for every slot.
  std::vector<uint8_t> dir;
  PutBe(dir, files.size(), 4);
  for (size_t i = 0; i < kFileSlots; ++i) {
    if (i < files.size()) {
      PutBe(dir, files[i].data.size(), 4);
      PutBe(dir, kFileFirst + i, 2);
      PutBe(dir, 0, 2);
      dir.insert(dir.end(), files[i].name.begin(), files[i].name.end());
      dir.resize(dir.size() + kFileNameBytes - files[i].name.size(), 0);
      items_[static_cast<uint16_t>(kFileFirst + i)] = std::move(files[i].data);
    } else {
      dir.resize(dir.size() + 64, 0);
    }
  }
  items_[kFileDir] = std::move(dir);
}

const std::vector<uint8_t>* FwCfg::Item(uint16_t key) const {
  auto it = items_.find(static_cast<uint16_t>(key & kKeyMask));
  return it == items_.end() ? nullptr : &it->second;
}

void FwCfg::Select(uint16_t key) {
  selector_ = key;
  offset_ = 0;
}

uint64_t FwCfg::Read(uint64_t offset, unsigned size) {
  if (offset >= kDmaOffset) {
    // The DMA address register reads as the signature, byte k of "QEMU CFG" at offset 4 + k.
    if (offset + size > kDmaOffset + 8) return AllOnes(size);
    uint64_t v = 0;
    for (unsigned i = 0; i < size; ++i) {
      const unsigned byte = static_cast<unsigned>(offset - kDmaOffset) + i;
      v |= ((kDmaSignature >> (8 * (7 - byte))) & 0xff) << (8 * i);
    }
    return v;
  }
  if (offset > kDataOffset) return AllOnes(size);  // 0x512, 0x513: nothing there
  // QEMU accepts only byte reads of the selector/data pair; both offsets read data.
  if (size != 1) return AllOnes(size);
  const std::vector<uint8_t>* item = Item(selector_);
  if (!item || offset_ >= item->size()) return 0;
  return (*item)[offset_++];
}

void FwCfg::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (offset <= kDataOffset) {
    // A 16-bit write selects; an 8-bit one is a data write, which QEMU ignores since 2.4.
    if (size == 2) Select(static_cast<uint16_t>(value));
    return;
  }
  if (offset == kDmaOffset && size == 4) {
    dma_address_ = uint64_t{ByteSwap32(value)} << 32;
  } else if (offset == kDmaOffset + 4 && size == 4) {
    dma_address_ |= ByteSwap32(value);
    DmaTransfer();
  } else if (offset == kDmaOffset && size == 8) {
    dma_address_ = (uint64_t{ByteSwap32(value)} << 32) | ByteSwap32(value >> 32);
    DmaTransfer();
  }
}

// As QEMU's fw_cfg_dma_transfer: the access structure's fields are big-endian; its control
// word is overwritten with 0 on success or kDmaError. Guest memory outside RAM is an error.
void FwCfg::DmaTransfer() {
  const uint64_t at = dma_address_;
  dma_address_ = 0;  // "0 at startup and after an operation"
  auto put_control = [&](uint32_t control) {
    uint8_t b[4] = {static_cast<uint8_t>(control >> 24), static_cast<uint8_t>(control >> 16),
                    static_cast<uint8_t>(control >> 8), static_cast<uint8_t>(control)};
    mem_.Write(at, b, 4);  // nothing happens if `at` is outside RAM
  };
  uint8_t access[16];
  if (!mem_.Read(at, access, sizeof access)) {
    put_control(kDmaError);
    return;
  }
  uint32_t control = static_cast<uint32_t>(GetBe(access, 4));
  uint64_t length = GetBe(access + 4, 4);
  uint64_t address = GetBe(access + 8, 8);
  if (control & kDmaSelect) Select(static_cast<uint16_t>(control >> 16));
  const bool read = (control & kDmaRead) != 0;
  const bool write = !read && (control & kDmaWrite) != 0;
  if (!read && !write && !(control & kDmaSkip)) length = 0;
  const std::vector<uint8_t>* item = Item(selector_);
  uint32_t result = 0;
  while (length > 0 && !(result & kDmaError)) {
    uint64_t len;
    if (!item || offset_ >= item->size()) {
      // Past the end (or no item): a read fills zeros, a write fails, a skip does nothing.
      len = length;
      if (read) {
        if (!mem_.Contains(address, len)) {
          result |= kDmaError;
        } else if (len) {
          static constexpr uint8_t kZeros[4096] = {};
          for (uint64_t done = 0; done < len;) {
            const uint64_t n = std::min<uint64_t>(len - done, sizeof kZeros);
            mem_.Write(address + done, kZeros, n);
            done += n;
          }
        }
      }
      if (write) result |= kDmaError;
    } else {
      len = std::min<uint64_t>(length, item->size() - offset_);
      if (read && !mem_.Write(address, item->data() + offset_, len)) result |= kDmaError;
      if (write) result |= kDmaError;  // every item is read-only
      offset_ += static_cast<uint32_t>(len);
    }
    address += len;
    length -= len;
  }
  put_control(result);
}

void FwCfg::SaveState(StateWriter& out) const {
  out.Begin("FWCF", 1);
  out.U16(selector_);
  out.U32(offset_);
  out.U64(dma_address_);
}

void FwCfg::LoadState(StateReader& in) {
  in.Begin("FWCF", 1);
  const uint16_t selector = in.U16();
  const std::vector<uint8_t>* item = Item(selector);
  const uint32_t offset = static_cast<uint32_t>(
      in.Bounded(in.U32(), item ? item->size() : 0, "fw_cfg data offset"));
  const uint64_t dma_address = in.U64();
  selector_ = selector;
  offset_ = offset;
  dma_address_ = dma_address;
}

}  // namespace vmrr
