// gpuhook groups: every IOMMU group and its devices, sorted numerically (groups) and by address
// (devices), read from /sys/kernel/iommu_groups/N/devices - the well-known shell loop, without
// its pitfalls (lexical order, short addresses, missing drivers).
#include "app/verbs.h"
#include "sysinfo/pci.h"

namespace gpuhook {
namespace {

std::string json_or_null(const std::string& s) { return s.empty() ? "null" : json_str(s); }

}  // namespace

int verb_groups(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream&) {
  PciSysfs pci(app.host.fs);
  auto groups = pci.groups();
  if (inv.json) {
    out << "{\"groups\":[";
    for (size_t g = 0; g < groups.size(); ++g) {
      out << (g ? "," : "") << "{\"id\":" << groups[g] << ",\"devices\":[";
      auto members = pci.group_members(groups[g]);
      for (size_t i = 0; i < members.size(); ++i) {
        auto d = pci.device(members[i]);
        PciDevice dv = d ? *d : PciDevice{};
        out << (i ? "," : "") << "{\"address\":" << json_str(members[i]) << ",\"vendor\":" << json_or_null(dv.vendor)
            << ",\"device\":" << json_or_null(dv.device)
            << ",\"class\":" << json_or_null(dv.class_code.empty() ? "" : dv.class4())
            << ",\"subsystem_vendor\":" << json_or_null(dv.subsystem_vendor)
            << ",\"subsystem_device\":" << json_or_null(dv.subsystem_device)
            << ",\"driver\":" << json_or_null(dv.driver) << "}";
      }
      out << "]}";
    }
    out << "]}\n";
    return groups.empty() ? 1 : 0;
  }
  if (groups.empty()) {
    out << "No IOMMU groups in " << kIommuGroups << ": the IOMMU is off or not supported.\n"
        << "`gpuhook doctor` says why and what to do.\n";
    return 1;
  }
  for (int g : groups) {
    out << "IOMMU group " << g << ":\n";
    for (const auto& a : pci.group_members(g)) {
      auto d = pci.device(a);
      if (!d) {
        out << "  " << a << " (attributes unreadable)\n";
        continue;
      }
      std::string name = d->class_name();
      if (name.rfind("class ", 0) == 0) name = "class";  // no name known: just the code
      out << "  " << a << " " << name << " [" << d->class4() << "]: " << d->vendor << ":" << d->device;
      if (!d->subsystem_vendor.empty()) out << " subsystem " << d->subsystem_vendor << ":" << d->subsystem_device;
      out << (d->driver.empty() ? " (no driver)" : " (driver " + d->driver + ")") << "\n";
    }
  }
  return 0;
}

}  // namespace gpuhook
