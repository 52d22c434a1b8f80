// Turns a Listing (support/listing.h) into a sysfs tree shaped like the kernel's, for `--root` and
// FakeFs tests and bug reports:
//   /sys/devices/pciDDDD:00/<bridge>/.../<addr>/   vendor, device, class ("0x030000\n": the kernel's
//        format; the listing gives no prog-if, so it is 00), subsystem_vendor/subsystem_device (only
//        when the listing shows them: left out rather than invented), driver_override "(null)\n",
//        boot_vga (VGA [0300] devices only, as the kernel does), driver -> bus/pci/drivers/<drv>,
//        iommu_group -> kernel/iommu_groups/N
//   /sys/bus/pci/devices/<addr> -> ../../../devices/...      (relative links, as the kernel writes)
//   /sys/bus/pci/drivers/<drv>/<addr> -> the device
//   /sys/kernel/iommu_groups/N/devices/<addr> -> the device  (the directory exists, empty, without groups)
//   /proc/cmdline when the listing had one; /sys/class/dmi/id/chassis_type from the header's kind
//   (*-laptop: 10 "Notebook", desktop-*: 3 "Desktop"; nothing when unknown)
// What a listing does not say, and how it is filled in (also returned in Tree::notes):
//   - the bridge above each bus: a PCI bridge of the same IOMMU group on a lower bus (a root port
//     without ACS shares its group with what is behind it), else an unused bridge whose group holds
//     no endpoint (lowest address on the highest bus), else a directory "bridge-to-bus-BB" standing
//     for a bridge the listing does not show (it is no PCI device: no attributes, no links)
//   - boot_vga: 1 for the first VGA device on bus 0; else for the first VGA device unless the
//     header says laptop (laptops boot on an iGPU the listing may not show); 0 for the others
//   - a listing without groups (lspci only) gives devices without iommu_group links
#pragma once
#include <string>
#include <vector>

#include "host/error.h"
#include "support/listing.h"

namespace gpuhook {
class FakeFs;
}

namespace gpuhook::fixtures {

struct TreeEntry {
  enum class Kind { dir, file, link } kind;
  std::string path;  // absolute host path ("/sys/...")
  std::string data;  // file content, or link target (relative)
};

struct Tree {
  std::vector<TreeEntry> entries;  // parents before children
  std::vector<std::string> notes;  // what was filled in, one line each
};

Tree build_sysfs_tree(const Listing& l);

// Into a FakeFs (in-process tests).
void write_tree(FakeFs& fs, const Tree& t);
// Under a real directory (created; must not exist or be empty), for `gpuhook --root DIR`.
Status write_tree_dir(const std::string& root, const Tree& t);

// "../../kernel/iommu_groups/1" from the directory `from_dir` to `target` (both absolute).
std::string relative_link(const std::string& from_dir, const std::string& target);

}  // namespace gpuhook::fixtures
