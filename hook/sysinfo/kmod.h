// Kernel modules as the running kernel offers them, read-only through Fs:
//   /sys/module/<m>/initstate          "live": loaded as a module
//   /sys/module/<m> without initstate   built into the kernel (when it has parameters or a version)
//   /lib/modules/<release>/modules.builtin   built in (also when /sys/module shows nothing)
//   /lib/modules/<release>/modules.dep       available as a loadable module
// Names compare the way kmod does: '-' and '_' are the same.
#pragma once
#include <string>

#include "host/fs.h"

namespace gpuhook {

enum class ModuleState { loaded, builtin, available, missing, unknown };
const char* to_string(ModuleState s);  // "loaded", "builtin", "available", "missing", "unknown"

struct ModuleInfo {
  std::string name;      // as asked ("vfio-pci")
  ModuleState state = ModuleState::unknown;
  std::string evidence;  // where that came from, for messages
};

// The name of a module as the kernel shows it under /sys/module: kmod treats '-' and '_' as the
// same ("nvidia-drm" is nvidia_drm). The one place names are normalised: the planner, the steps
// and check all use it.
std::string module_name(std::string_view m);

// release: /proc/sys/kernel/osrelease ("" reads it).
ModuleInfo module_info(Fs& fs, const std::string& name, std::string release = "");

}  // namespace gpuhook
