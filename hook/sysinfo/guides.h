// The mistakes passthrough guides leave behind on a host, found read-only through Fs: kernel
// options the kernel does not know (iommu=on), static vfio-pci binding (options vfio-pci ids= in
// modprobe.d, vfio-pci.ids= on the command line) parsed exactly as the kernel parses it, the GPU's
// reset health. Each Issue names the offending value (file:line, the option, the id), why it
// matters and the one next step; `doctor` and `check` turn them into findings with the same id.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "host/fs.h"
#include "sysinfo/iommu.h"
#include "sysinfo/pci.h"

namespace gpuhook {

struct Issue {
  std::string id;        // stable finding id ("cmdline-iommu-value")
  std::string severity;  // "error", "warning", "info"
  std::string message;   // what, where, why it matters
  std::string fix;       // the next step
};

// One comma-separated entry of a vfio-pci ids= list, as the kernel's vfio_pci_fill_ids reads it:
// sscanf(entry, "%x:%x:%x:%x:%x:%x"), at least vendor and device, else the entry is ignored.
struct VfioIdEntry {
  std::string text;              // the entry as written ("10de:1aec.10de:1aed")
  bool valid = false;            // the kernel adds an id for it
  unsigned vendor = 0, device = 0;
  std::optional<unsigned> subvendor, subdevice;
  std::string rest;              // what the kernel stops reading at (".10de:1aed"), "" when all read
};
std::vector<VfioIdEntry> parse_vfio_ids(const std::string& list);

// Where a static binding is written: "/etc/modprobe.d/vfio.conf:3" or "/proc/cmdline".
struct VfioIdsSource {
  std::string where;                 // file:line, or "/proc/cmdline"
  std::string line;                  // the whole line (the command-line option alone)
  std::vector<VfioIdEntry> entries;
};
// Every `options vfio-pci ids=` / `options vfio_pci ids=` in the modprobe.d directories
// (/etc, /run, /usr/lib, /lib: *.conf) and every vfio-pci.ids= / vfio_pci.ids= of /proc/cmdline.
std::vector<VfioIdsSource> static_vfio_ids(Fs& fs);

// Values of iommu=, intel_iommu=, amd_iommu= the kernel does not know; an Intel kernel whose
// IOMMU is off by default without intel_iommu=on.
std::vector<Issue> cmdline_issues(const IommuInfo& info);

// The static vfio-pci ids against the devices of this host. `cards`: the functions of each
// discrete GPU's card (ids that match only these are fine). `dynamic`: the functions gpuhook binds
// for a profile ("" none): a static binding of them as well is reported.
std::vector<Issue> vfio_ids_issues(Fs& fs, const std::vector<std::vector<std::string>>& cards,
                                   const std::vector<std::string>& dynamic);

// The GPU's reset health: an empty reset_method, an AMD GPU of a family with the known reset bug
// (Polaris, Vega, Navi 10/12/14) without the vendor-reset module loaded.
std::vector<Issue> reset_issues(Fs& fs, const PciDevice& gpu);

// The PCI devices the host needs for itself: the controller of its root file system and the
// network device of its default route, each with what the host loses ("address" -> "reason").
std::vector<std::pair<std::string, std::string>> host_critical_devices(Fs& fs);

}  // namespace gpuhook
