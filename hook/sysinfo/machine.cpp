#include "sysinfo/machine.h"

#include <string_view>

namespace gpuhook {
namespace {

struct ChassisType {
  int code;
  const char* name;
  Chassis kind;
};
// SMBIOS (DMTF DSP0134) system enclosure types that say portable or stationary; others are unknown.
const ChassisType kTypes[] = {
    {3, "Desktop", Chassis::desktop},         {4, "Low Profile Desktop", Chassis::desktop},
    {5, "Pizza Box", Chassis::desktop},       {6, "Mini Tower", Chassis::desktop},
    {7, "Tower", Chassis::desktop},           {8, "Portable", Chassis::laptop},
    {9, "Laptop", Chassis::laptop},           {10, "Notebook", Chassis::laptop},
    {11, "Hand Held", Chassis::laptop},       {13, "All in One", Chassis::desktop},
    {14, "Sub Notebook", Chassis::laptop},    {15, "Space-saving", Chassis::desktop},
    {16, "Lunch Box", Chassis::desktop},      {17, "Main Server Chassis", Chassis::desktop},
    {23, "Rack Mount Chassis", Chassis::desktop}, {24, "Sealed-case PC", Chassis::desktop},
    {30, "Tablet", Chassis::laptop},          {31, "Convertible", Chassis::laptop},
    {32, "Detachable", Chassis::laptop},      {35, "Mini PC", Chassis::desktop},
    {36, "Stick PC", Chassis::desktop},
};

const char* kUnitDirs[] = {"/etc/systemd/system", "/run/systemd/system", "/run/systemd/generator",
                           "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"};

}  // namespace

const char* to_string(Chassis c) {
  switch (c) {
    case Chassis::laptop: return "laptop";
    case Chassis::desktop: return "desktop";
    case Chassis::unknown: break;
  }
  return "unknown";
}

ChassisInfo detect_chassis(Fs& fs) {
  ChassisInfo info;
  std::string t = read_attr(fs, "/sys/class/dmi/id/chassis_type");
  if (!t.empty() && t.size() < 4 && t.find_first_not_of("0123456789") == std::string::npos) {
    int code = std::stoi(t);
    for (const auto& ct : kTypes)
      if (ct.code == code) {
        info.kind = ct.kind;
        info.evidence = "SMBIOS chassis type " + t + " (" + ct.name + ")";
        return info;
      }
  }
  if (auto l = fs.list("/sys/class/power_supply"); l)
    for (const auto& ps : *l)
      if (read_attr(fs, "/sys/class/power_supply/" + ps + "/type") == "Battery") {
        info.kind = Chassis::laptop;
        info.evidence = "battery " + ps;
        return info;
      }
  if (!t.empty()) info.evidence = "SMBIOS chassis type " + t + " says neither laptop nor desktop";
  return info;
}

bool unit_installed(Fs& fs, const std::string& unit0, std::string* where) {
  std::string unit = unit0;
  auto dot = unit.rfind('.');
  if (dot == std::string::npos || unit.find('/', dot) != std::string::npos) unit += ".service";
  std::string templ;
  auto at = unit.find('@');
  if (at != std::string::npos) templ = unit.substr(0, at + 1) + unit.substr(unit.rfind('.'));
  for (const char* dir : kUnitDirs)
    for (const std::string& name : {unit, templ}) {
      if (name.empty()) continue;
      std::string p = std::string(dir) + "/" + name;
      // A link to /dev/null (a masked unit) still names an installed unit; lstat so dangling links count.
      if (fs.stat(p, false).type != FileType::missing) {
        if (where) *where = p;
        return true;
      }
    }
  return false;
}

}  // namespace gpuhook
