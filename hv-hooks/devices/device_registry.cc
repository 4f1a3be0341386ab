// DeviceRegistry: registration checks, bus mapping, the timed and input fan-out, and the
// manifest-checked, all-or-nothing save/load of every registered device.
#include "hv-hooks/devices/device_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <span>
#include <stdexcept>

namespace vmrr {

namespace {

std::string Hex(uint64_t v) { return fmt::format("{:#x}", v); }

const char* SpaceName(BusWindow::Space s) {
  return s == BusWindow::Space::kPort ? "port I/O" : "MMIO";
}

std::string Describe(const BusWindow& w) {
  return std::string(SpaceName(w.space)) + " " + Hex(w.base) + ".." +
         Hex(w.base + w.length - 1);
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

}  // namespace

void DeviceRegistry::AddEntry(Device& device, BusDevice* self,
                              std::initializer_list<BusWindow> windows) {
  const std::string name(device.name());
  if (name.empty() || name.size() > kMaxNameBytes) {
    throw std::logic_error("device registry: device name '" + name + "' is empty or too long");
  }
  if (entries_.size() >= kMaxDevices) {
    throw std::logic_error("device registry: more than " + std::to_string(kMaxDevices) +
                           " devices");
  }
  for (const Entry& e : entries_) {
    if (e.device->name() == name) {
      throw std::logic_error("device registry: two devices named " + name);
    }
  }
  Entry entry{&device, {}};
  for (BusWindow w : windows) {
    if (w.target == nullptr) {
      if (self == nullptr) {
        throw std::logic_error("device registry: " + name +
                               " is not a BusDevice; its windows must name their target");
      }
      w.target = self;
    }
    if (w.length == 0) throw BusError(name + ": empty " + SpaceName(w.space) + " window at " +
                                      Hex(w.base));
    if (w.base + w.length - 1 < w.base) {
      throw BusError(name + ": " + SpaceName(w.space) + " window at " + Hex(w.base) + " wraps");
    }
    entry.windows.push_back(w);
  }
  // Overlaps are checked here, against every window registered so far (the new device's own
  // included), so that the error names both devices before any bus is touched.
  for (size_t i = 0; i < entry.windows.size(); ++i) {
    const BusWindow& w = entry.windows[i];
    auto overlaps = [&w](const BusWindow& o) {
      return o.space == w.space && o.base <= w.base + w.length - 1 &&
             w.base <= o.base + o.length - 1;
    };
    for (const Entry& e : entries_) {
      for (const BusWindow& o : e.windows) {
        if (overlaps(o)) {
          throw BusError(name + ": " + Describe(w) + " overlaps " + std::string(e.device->name()) +
                         "'s " + Describe(o));
        }
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (overlaps(entry.windows[j])) {
        throw BusError(name + ": " + Describe(w) + " overlaps its own " +
                       Describe(entry.windows[j]));
      }
    }
  }
  entries_.push_back(std::move(entry));
}

void DeviceRegistry::MapInto(PortBus& ports, MmioBus& mmio) const {
  for (const Entry& e : entries_) {
    for (const BusWindow& w : e.windows) {
      Bus& bus = w.space == BusWindow::Space::kPort ? static_cast<Bus&>(ports) : mmio;
      try {
        bus.Insert(*w.target, w.base, w.length);
      } catch (const BusError& err) {
        throw BusError(std::string(e.device->name()) + ": " + err.what());
      }
    }
  }
}

uint64_t DeviceRegistry::NextDeadlineNs() const {
  uint64_t d = kNoDeadline;
  for (const Entry& e : entries_) d = std::min(d, e.device->NextDeadlineNs());
  return d;
}

void DeviceRegistry::RunTimers() {
  for (const Entry& e : entries_) e.device->RunTimers();
}

void DeviceRegistry::PollInputs() {
  for (const Entry& e : entries_) e.device->PollInput();
}

std::vector<std::string> DeviceRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.emplace_back(e.device->name());
  return out;
}

void DeviceRegistry::SaveState(StateWriter& out) const {
  out.Begin("DEVS", kStateVersion);
  out.U32(static_cast<uint32_t>(entries_.size()));
  for (const Entry& e : entries_) {
    const std::string_view n = e.device->name();
    out.Bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(n.data()), n.size()));
  }
  SaveDevices(out);
}

void DeviceRegistry::LoadState(StateReader& in) {
  in.Begin("DEVS", kStateVersion);
  const uint64_t count = in.Bounded(in.U32(), kMaxDevices, "device count");
  std::vector<std::string> saved;
  saved.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    std::vector<uint8_t> n = in.Bytes(kMaxNameBytes);
    saved.emplace_back(n.begin(), n.end());
  }
  const std::vector<std::string> ours = names();
  if (saved != ours) {
    std::vector<std::string> only_saved, only_ours;
    for (const std::string& n : saved) {
      if (std::find(ours.begin(), ours.end(), n) == ours.end()) only_saved.push_back(n);
    }
    for (const std::string& n : ours) {
      if (std::find(saved.begin(), saved.end(), n) == saved.end()) only_ours.push_back(n);
    }
    std::string why = "the saved devices differ from this machine's: ";
    if (only_saved.empty() && only_ours.empty()) {
      why += "the same devices in another order (saved: " + JoinNames(saved) +
             "; this machine: " + JoinNames(ours) + ")";
    } else {
      why += "only in the saved state: " + JoinNames(only_saved) +
             "; only in this machine: " + JoinNames(only_ours);
    }
    in.Fail(why);
  }
  // Each device loads atomically, but the set must too: if a later device refuses its bytes,
  // the earlier ones are put back from a backup taken first (our own bytes always load).
  StateWriter backup;
  SaveDevices(backup);
  try {
    LoadDevices(in);
  } catch (const StateError&) {
    StateReader undo(backup.bytes());
    LoadDevices(undo);
    throw;
  }
}

void DeviceRegistry::SaveDevices(StateWriter& out) const {
  for (const Entry& e : entries_) e.device->SaveState(out);
}

void DeviceRegistry::LoadDevices(StateReader& in) {
  for (const Entry& e : entries_) e.device->LoadState(in);
}

}  // namespace vmrr
