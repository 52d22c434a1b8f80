// Facts about the machine as a whole, read-only through Fs:
//   laptop or desktop  /sys/class/dmi/id/chassis_type (SMBIOS chassis type), else a battery in
//                      /sys/class/power_supply (type "Battery")
//   systemd units      unit files in systemd's search path (works on --root trees, no systemctl)
#pragma once
#include <string>

#include "host/fs.h"

namespace gpuhook {

enum class Chassis { laptop, desktop, unknown };
const char* to_string(Chassis c);  // "laptop", "desktop", "unknown"

struct ChassisInfo {
  Chassis kind = Chassis::unknown;
  std::string evidence;  // "chassis_type 10 (Notebook)", "battery BAT0", "" when unknown
};

ChassisInfo detect_chassis(Fs& fs);

// Whether a systemd unit is installed: a unit file (or link) of that name, or of its template
// ("getty@tty1.service" -> "getty@.service"), in /etc, /run, /usr/local/lib, /lib or /usr/lib
// systemd/system. A name without a type suffix means ".service", as systemctl does.
// `where` receives the path found.
bool unit_installed(Fs& fs, const std::string& unit, std::string* where = nullptr);

}  // namespace gpuhook
