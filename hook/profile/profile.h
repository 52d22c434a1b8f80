// Profiles: /etc/gpuhook/vms/<vm>.toml (one VM) and /etc/gpuhook/gpuhook.toml (global).
// Every key is documented in config/*.toml and README.md ("Profile reference").
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "host/error.h"
#include "host/fs.h"
#include "host/log.h"
#include "profile/timeouts.h"

namespace gpuhook {

enum class DisplayMode { external, takeover, mux, ddc, command, looking_glass };
enum class HolderPolicy { refuse, terminate };
enum class MuxMethod { switcheroo, acpi };

const char* to_string(DisplayMode m);
const char* to_string(HolderPolicy p);
const char* to_string(MuxMethod m);

struct ProfileCommand {
  std::string when;                  // prepare | start | started
  std::vector<std::string> run;      // argv, absolute program path
  std::vector<std::string> undo;     // argv, may be empty
  int line = 0;
};

// [display.looking_glass] (mode "looking-glass").
struct LookingGlassConfig {
  std::vector<std::string> client;   // argv, absolute program ("/usr/local/bin/looking-glass-client", "-F")
  std::string user;                  // the desktop user who sees it: owns the shared memory, runs the client
  int width = 1920, height = 1080;   // the largest guest resolution: sizes the shared memory
};

// [tuning] (issue 13): host changes for the VM's lifetime, each journaled and restored.
struct TuningConfig {
  bool hugepages = false;       // reserve the huge pages <memoryBacking><hugepages/> needs
  bool isolate_cpus = false;    // host processes off the CPUs of <vcpupin>/<emulatorpin>/<iothreadpin>
  std::string governor;         // cpufreq governor of the pinned CPUs (all without pinning); "" untouched
  bool inhibit_sleep = false;   // a logind sleep/idle inhibitor while the VM runs
  bool shared_memory = false;   // the domain's Looking Glass <shmem> file (implied by mode looking-glass)
};

struct Profile {
  std::string path;

  std::string gpu_address;                 // [gpu] address, normalised "0000:01:00.0"
  std::vector<std::string> also;           // [gpu] also: endpoints of other slots that go along

  DisplayMode mode = DisplayMode::external;
  MuxMethod mux_method = MuxMethod::switcheroo;
  std::string acpi_dgpu, acpi_igpu;        // [display.mux]
  int ddc_bus = -1, ddc_vm_input = -1;     // [display.ddc]
  std::optional<int> ddc_host_input;
  std::vector<std::string> switch_cmd, restore_cmd;  // [display.command]

  std::vector<std::string> stop_services;  // [host]
  std::vector<std::string> unload_modules;
  bool unbind_consoles = false;
  bool release_framebuffer = false;
  bool unload_vfio = false;                // [host] unload_vfio: unload vfio-pci (if gpuhook loaded it) on release
  HolderPolicy holders = HolderPolicy::refuse;

  LookingGlassConfig looking_glass;        // [display.looking_glass]
  TuningConfig tuning;                     // [tuning]

  std::vector<ProfileCommand> commands;    // [[commands]]
  Timeouts timeouts;
};

struct GlobalConfig {
  std::string path;
  Level log_level = Level::info;
  std::string log_dir = "/var/log/gpuhook";
  bool syslog = true;
  Timeouts timeouts;
};

// Every problem found in a file, each "path:line:col: what is wrong".
struct ConfigErrors {
  std::vector<std::string> lines;
  bool empty() const { return lines.empty(); }
  std::string text() const {
    std::string t;
    for (const auto& l : lines) t += l + "\n";
    return t;
  }
};

inline const char* kProfileDir = "/etc/gpuhook/vms";
inline const char* kGlobalConfig = "/etc/gpuhook/gpuhook.toml";

// A VM name that can safely name a file in the profile directory: not empty, at most 200 bytes,
// no '/', no leading '.', no control characters. Returns "" when fine, else why not.
std::string vm_name_problem(std::string_view vm);
std::string profile_path(std::string_view vm);

// A file root makes decisions from (it runs commands) must be a regular file owned by root and
// not writable by group or others; same for its directory. Returns "" when fine.
std::string file_trust_problem(Fs& fs, const std::string& path);

// Parses and validates; `defaults` supplies the global timeouts. On any error returns them all.
Result<Profile> load_profile(Fs& fs, const std::string& path, const Timeouts& defaults, ConfigErrors* errors);
// From text (tests, fuzzing): no file checks.
Result<Profile> parse_profile(std::string_view text, const std::string& path, const Timeouts& defaults,
                              ConfigErrors* errors);
// A missing global config gives the defaults.
Result<GlobalConfig> load_global(Fs& fs, const std::string& path, ConfigErrors* errors);
Result<GlobalConfig> parse_global(std::string_view text, const std::string& path, ConfigErrors* errors);

}  // namespace gpuhook
