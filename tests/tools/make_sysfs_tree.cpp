// make-sysfs-tree LISTING DIR: turns a posted device listing (IOMMU-group loop output, lspci -nn,
// lspci -nnk) into a sysfs tree under DIR shaped like the kernel's, so that
//   gpuhook --root DIR doctor | groups | ids ADDR
// run against a machine you do not have. For bug reports: paste your listing into a file.
// Prints what it read and what it had to fill in; lines it could not read go to stderr.
#include <fstream>
#include <iostream>
#include <sstream>

#include "support/listing.h"
#include "support/sysfs_tree.h"

int main(int argc, char** argv) {
  using namespace gpuhook::fixtures;
  if (argc != 3 || std::string(argv[1]) == "--help") {
    std::cerr << "usage: make-sysfs-tree LISTING DIR\n"
                 "  LISTING  a text file: the IOMMU-group shell loop's output, lspci -nn or lspci -nnk\n"
                 "  DIR      a new or empty directory; then run: gpuhook --root DIR doctor\n";
    return argc == 2 && std::string(argv[1]) == "--help" ? 0 : 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::cerr << "make-sysfs-tree: cannot read " << argv[1] << "\n";
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Listing l = parse_listing(ss.str());
  for (const auto& i : l.ignored) std::cerr << "make-sysfs-tree: " << argv[1] << ": skipped " << i << "\n";
  for (const auto& p : l.problems) std::cerr << "make-sysfs-tree: " << argv[1] << ": " << p << "\n";
  if (l.devices.empty()) {
    std::cerr << "make-sysfs-tree: " << argv[1] << ": no device lines found (need lspci -nn style lines with [class] and [vendor:device])\n";
    return 1;
  }
  Tree t = build_sysfs_tree(l);
  auto s = write_tree_dir(argv[2], t);
  if (!s) {
    std::cerr << "make-sysfs-tree: " << s.error().message() << "\n";
    return 1;
  }
  int groups = 0;
  for (const auto& e : t.entries)
    if (e.kind == TreeEntry::Kind::dir && e.path.rfind("/sys/kernel/iommu_groups/", 0) == 0 &&
        e.path.find('/', 25) == std::string::npos)
      ++groups;
  std::cout << argv[2] << ": " << l.devices.size() << " devices, " << groups << " IOMMU groups"
            << (l.has_groups ? "" : " (the listing has none: the IOMMU looks off)") << "\n";
  for (const auto& n : t.notes) std::cout << "  " << n << "\n";
  return l.problems.empty() ? 0 : 1;
}
