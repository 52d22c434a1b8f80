// Reads the device listings people post when they ask about GPU passthrough: the IOMMU-group shell
// loop ("IOMMU Group 1 01:00.0 VGA compatible controller [0300]: ... [10de:1c20] (rev a1)", also
// "IOMMU group N" and the "IOMMU Group N:" header form with indented devices), `lspci -nn` and
// `lspci -nnk` (indented "Subsystem: ... [1558:8550]" and "Kernel driver in use: nvidia" lines).
// Messy input is expected: unsorted groups, "0000:" prefixes, shell prompts, "..." elisions,
// blank lines, error messages, a pasted /proc/cmdline. Lines that are not devices are kept in
// `ignored` (with their number) rather than guessed at.
//
// A file may start with "# key: value" header lines (tests/data/real/*.txt: source, machine,
// kind, dgpu, format, note); they are returned in `header`.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sysinfo/pci.h"

namespace gpuhook::fixtures {

struct ListedDevice {
  PciAddress address;
  std::string class4;                              // "0300"
  std::string vendor, device;                      // lowercase hex, 4 digits
  std::string subsystem_vendor, subsystem_device;  // "" when the listing does not say
  std::string driver;                              // "Kernel driver in use:", "" when not shown
  std::optional<int> group;                        // IOMMU group, when the listing has one
  std::string text;                                // the listing's line after the address
  int line = 0;
  bool is_pci_bridge() const { return class4 == "0604" || class4 == "0609" || class4 == "0607"; }
};

struct Listing {
  std::map<std::string, std::string> header;  // first "# key: value" of each key; notes joined with " | "
  std::vector<ListedDevice> devices;          // sorted by address, one per address
  bool has_groups = false;                    // at least one device came with an IOMMU group
  std::string cmdline;                        // a pasted /proc/cmdline ("BOOT_IMAGE=..."), or ""
  std::vector<std::string> ignored;           // "line 3: lsiommu: 3: lsiommu: shopt: not found"
  std::vector<std::string> problems;          // contradictions, e.g. one address in two groups
  const ListedDevice* find(const std::string& address) const;
};

Listing parse_listing(std::string_view text);

}  // namespace gpuhook::fixtures
