#include "sysinfo/iommu.h"

#include <sstream>

#include "sysinfo/pci.h"

namespace gpuhook {
namespace {

bool starts(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

Known table(Fs& fs, const std::string& name) {
  const std::string dir = "/sys/firmware/acpi/tables";
  if (!fs.is_dir(dir)) return Known::unknown;  // no ACPI tables visible (non-ACPI machine, captured tree)
  return fs.exists(dir + "/" + name) ? Known::yes : Known::no;
}

std::string cpu_vendor(Fs& fs) {
  auto r = fs.read("/proc/cpuinfo");
  if (!r) return "";
  std::istringstream in(*r);
  std::string line;
  while (std::getline(in, line)) {
    if (!starts(line, "vendor_id")) continue;
    if (line.find("GenuineIntel") != std::string::npos) return "intel";
    if (line.find("AuthenticAMD") != std::string::npos || line.find("HygonGenuine") != std::string::npos) return "amd";
    return "";
  }
  return "";
}

// Debian's kernels carry a three-way choice (on / on,intgpu_off / off); mainline has a boolean.
std::string intel_default(Fs& fs, const std::string& release) {
  if (release.empty()) return "";
  auto r = fs.read("/boot/config-" + release);
  if (!r) return "";
  const std::string& c = *r;
  if (c.find("\nCONFIG_INTEL_IOMMU=y") == std::string::npos) return "";
  if (c.find("\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y") != std::string::npos) return "on";
  if (c.find("\nCONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF=y") != std::string::npos) return "on except integrated GPUs";
  return "off";
}

}  // namespace

IommuInfo detect_iommu(Fs& fs) {
  IommuInfo info;
  info.groups = static_cast<int>(PciSysfs(fs).groups().size());
  if (auto r = fs.read("/proc/cmdline"); r) {
    info.cmdline_known = true;
    info.cmdline = trim(*r);
    std::istringstream in(info.cmdline);
    std::string arg;
    while (in >> arg) {
      bool related = starts(arg, "intel_iommu=") || starts(arg, "amd_iommu=") || starts(arg, "iommu=") ||
                     starts(arg, "iommu.") || starts(arg, "vfio-pci.") || starts(arg, "vfio_pci.") ||
                     starts(arg, "pcie_acs_override=");
      if (!related) continue;
      info.cmdline_args.push_back(arg);
      std::string value = arg.substr(arg.find('=') + 1);
      bool off = false, on = false;
      for (size_t b = 0; b <= value.size();) {  // "on,igfx_off" is a list
        size_t e = value.find(',', b);
        if (e == std::string::npos) e = value.size();
        std::string v = value.substr(b, e - b);
        if (v == "off") off = true;
        if (v == "on") on = true;
        b = e + 1;
      }
      if ((starts(arg, "intel_iommu=") || starts(arg, "amd_iommu=") || starts(arg, "iommu=")) && off)
        info.cmdline_disables = true;
      if (starts(arg, "intel_iommu=") && on) info.cmdline_enables = true;
    }
  }
  info.dmar = table(fs, "DMAR");
  info.ivrs = table(fs, "IVRS");
  if (auto l = fs.list("/sys/class/iommu"); l) info.units = *l;
  info.cpu_vendor = cpu_vendor(fs);
  info.kernel_release = read_attr(fs, "/proc/sys/kernel/osrelease");
  info.intel_default = intel_default(fs, info.kernel_release);
  return info;
}

std::string iommu_next_step(const IommuInfo& i) {
  if (i.enabled()) return "";
  if (i.cmdline_disables) {
    std::string args;
    for (const auto& a : i.cmdline_args)
      if (a.find("off") != std::string::npos) args += (args.empty() ? "" : " ") + a;
    return "remove " + args + " from the kernel command line (GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, "
           "then update-grub) and reboot";
  }
  bool intel = i.cpu_vendor == "intel" || i.dmar == Known::yes;
  bool amd = i.cpu_vendor == "amd" || i.ivrs == Known::yes;
  bool no_table = i.dmar == Known::no && i.ivrs == Known::no;
  if (no_table)
    return std::string("enable ") + (amd && !intel ? "AMD-Vi (often called IOMMU or SVM/IOMMU)" : intel && !amd ? "VT-d" : "VT-d (Intel) or AMD-Vi (AMD)") +
           " in the firmware setup: the firmware publishes no DMAR/IVRS table, so no kernel option can help";
  if (intel && !amd) {
    if (!i.cmdline_enables)
      return "add intel_iommu=on to the kernel command line (GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, "
             "then update-grub) and reboot; if it stays off, enable VT-d in the firmware setup";
    return "the kernel was told intel_iommu=on but made no groups: enable VT-d in the firmware setup and see "
           "`journalctl -k | grep -i dmar`";
  }
  if (amd && !intel)
    return "enable AMD-Vi/IOMMU in the firmware setup (the kernel turns it on by itself); `journalctl -k | grep "
           "-i AMD-Vi` says why it is off";
  return "enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup, and on Intel boot with intel_iommu=on";
}

}  // namespace gpuhook
