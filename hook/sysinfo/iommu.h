// Whether this host has a working IOMMU, and why not when it has none. Read-only, through Fs:
//   /sys/kernel/iommu_groups/*        the kernel made groups: the IOMMU is on (the only proof)
//   /proc/cmdline                     intel_iommu=, amd_iommu=, iommu=, iommu.passthrough=
//   /sys/firmware/acpi/tables/DMAR    Intel VT-d published by the firmware
//   /sys/firmware/acpi/tables/IVRS    AMD-Vi published by the firmware
//   /sys/class/iommu/*                IOMMU units the kernel drives (dmar0, ivhd0, ...)
//   /proc/cpuinfo                     CPU vendor, for the right hint
//   /boot/config-<release>            whether this kernel turns the Intel IOMMU on by default
#pragma once
#include <string>
#include <vector>

#include "host/fs.h"

namespace gpuhook {

enum class Known { yes, no, unknown };

struct IommuInfo {
  int groups = 0;                         // entries of /sys/kernel/iommu_groups
  bool enabled() const { return groups > 0; }
  bool cmdline_known = false;
  std::string cmdline;                    // /proc/cmdline without the newline
  std::vector<std::string> cmdline_args;  // the IOMMU-related arguments, in order
  bool cmdline_disables = false;          // intel_iommu=off, amd_iommu=off or iommu=off
  bool cmdline_enables = false;           // intel_iommu=on
  Known dmar = Known::unknown;            // ACPI DMAR table (Intel VT-d)
  Known ivrs = Known::unknown;            // ACPI IVRS table (AMD-Vi)
  std::vector<std::string> units;         // /sys/class/iommu entries
  std::string cpu_vendor;                 // "intel", "amd" or "" when unknown
  std::string kernel_release;             // /proc/sys/kernel/osrelease
  // From /boot/config-<release>: "on", "on except integrated GPUs", "off", or "" when unknown.
  std::string intel_default;
};

IommuInfo detect_iommu(Fs& fs);

// What to do to turn the IOMMU on, from what detect_iommu found (one line).
std::string iommu_next_step(const IommuInfo& info);

}  // namespace gpuhook
