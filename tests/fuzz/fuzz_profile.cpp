// Fuzz target: the profile loader and validator (toml++ behind it), and the global config.
// Beyond "never crash": whatever a profile says, what the validator accepts keeps the promises the
// rest of gpuhook relies on (checked below), and every rejection is reported as file:line:col.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "profile/profile.h"
#include "sysinfo/pci.h"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool valid_argv(const std::vector<std::string>& a, bool may_be_empty) {
  if (a.empty()) return may_be_empty;
  if (a[0].empty() || a[0][0] != '/') return false;  // absolute program path: root runs it without PATH
  for (const auto& s : a)
    if (s.find('\0') != std::string::npos) return false;
  return true;
}

bool valid_name(const std::string& s, const char* extra) {
  if (s.empty() || s[0] == '-') return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || std::strchr(extra, c))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpuhook;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ConfigErrors errs;
  auto p = parse_profile(text, "/etc/gpuhook/vms/fuzz.toml", Timeouts{}, &errs);
  if (p) {
    require(errs.empty());
    require(PciAddress::parse(p->gpu_address).has_value());
    require(PciAddress::parse(p->gpu_address)->str() == p->gpu_address);
    for (const auto& a : p->also) require(PciAddress::parse(a).has_value() && a != p->gpu_address);
    for (const auto& c : p->commands) {
      require(c.when == "prepare" || c.when == "start" || c.when == "started");
      require(valid_argv(c.run, false));
      require(valid_argv(c.undo, true));
    }
    if (p->mode == DisplayMode::command) require(valid_argv(p->switch_cmd, false) && valid_argv(p->restore_cmd, false));
    if (p->mode == DisplayMode::ddc) require(p->ddc_bus >= 0 && p->ddc_bus <= 255 && p->ddc_vm_input >= 0);
    if (p->mode == DisplayMode::mux && p->mux_method == MuxMethod::acpi)
      require(!p->acpi_dgpu.empty() && p->acpi_dgpu[0] == '\\' && p->acpi_dgpu.find(' ') == std::string::npos);
    for (const auto& u : p->stop_services) require(valid_name(u, ":_.\\@-"));
    for (const auto& m : p->unload_modules) require(valid_name(m, "_-"));
    require(p->timeouts.event_ms >= 1000 && p->timeouts.event_ms <= 600000);
  } else {
    require(!errs.empty());
    for (const auto& l : errs.lines) require(l.rfind("/etc/gpuhook/vms/fuzz.toml:", 0) == 0);
  }
  ConfigErrors gerrs;
  auto g = parse_global(text, "/etc/gpuhook/gpuhook.toml", &gerrs);
  if (g) {
    require(!g->log_dir.empty() && g->log_dir[0] == '/');
  } else {
    require(!gerrs.empty());
  }
  return 0;
}
