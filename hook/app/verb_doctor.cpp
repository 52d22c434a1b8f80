// gpuhook doctor: is this host ready for GPU passthrough, and what to do next.
//   IOMMU (groups, kernel command line, DMAR/IVRS tables), vfio modules, every display-class
//   device (sysinfo/gpus.h: integrated or discrete, group, isolation, outputs), the MUX switches
//   (sysinfo/mux.h), and findings, each with a next step. Exit 1 when a finding is an error.
#include <algorithm>

#include "app/findings.h"
#include "app/verbs.h"
#include "profile/profile.h"
#include "sysinfo/gpus.h"
#include "sysinfo/guides.h"
#include "sysinfo/iommu.h"
#include "sysinfo/kmod.h"
#include "sysinfo/machine.h"
#include "sysinfo/mux.h"

namespace gpuhook {
namespace {

const char* kVfioModules[] = {"vfio", "vfio_iommu_type1", "vfio_pci"};

struct Report {
  IommuInfo iommu;
  std::vector<ModuleInfo> vfio;
  ChassisInfo chassis;
  std::vector<DisplayAnalysis> displays;
  MuxInfo mux;
  std::vector<Finding> findings;
};

std::string null_or(const std::string& s) { return s.empty() ? "null" : json_str(s); }
std::string known_json(Known k) { return k == Known::yes ? "true" : k == Known::no ? "false" : "null"; }
std::string known_text(Known k) { return k == Known::yes ? "present" : k == Known::no ? "absent" : "not visible"; }

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string ids(const PciDevice& d) { return d.vendor + ":" + d.device; }

std::string describe_member(const PciDevice& d) {
  if (d.class_code.empty()) return d.address;
  return d.address + " (" + d.class_name() + (d.is_pci_bridge() ? ", stays on the host" : "") + ")";
}

void iommu_findings(Report& r) {
  const IommuInfo& i = r.iommu;
  std::string evidence;
  if (i.cmdline_known)
    evidence += "; kernel command line: " + (i.cmdline_args.empty() ? std::string("no IOMMU option") : join(i.cmdline_args, " "));
  if (i.dmar != Known::unknown || i.ivrs != Known::unknown)
    evidence += "; ACPI DMAR table " + known_text(i.dmar) + ", IVRS table " + known_text(i.ivrs);
  if (i.enabled()) {
    std::string note;
    if (i.cmdline_known && !i.cmdline_enables && i.cpu_vendor != "amd" && !i.intel_default.empty())
      note = "; this kernel turns the Intel IOMMU " + i.intel_default + " by default";
    r.findings.push_back(info_finding("iommu-on",
                                      "the IOMMU is on: " + std::to_string(i.groups) + " IOMMU groups" + evidence + note,
                                      "nothing to do; `gpuhook groups` lists them"));
    return;
  }
  r.findings.push_back(error_finding("iommu-off",
                                     std::string("the IOMMU looks off or unknown: no IOMMU groups in ") + kIommuGroups +
                                         evidence,
                                     iommu_next_step(i)));
}

void vfio_findings(Report& r) {
  const ModuleInfo& pci = r.vfio.back();  // vfio_pci
  switch (pci.state) {
    case ModuleState::loaded:
    case ModuleState::builtin:
    case ModuleState::available: {
      std::string how = pci.state == ModuleState::loaded    ? "loaded"
                        : pci.state == ModuleState::builtin ? "built into the kernel"
                                                            : "available as a module (gpuhook loads it in prepare)";
      r.findings.push_back(info_finding("vfio-ok", "vfio-pci is " + how, "nothing to do"));
      break;
    }
    case ModuleState::missing:
      r.findings.push_back(error_finding("vfio-missing", "this kernel has no vfio-pci (" + pci.evidence + ")",
                                         "boot a kernel built with CONFIG_VFIO_PCI (Debian's linux-image-amd64 has it)"));
      break;
    case ModuleState::unknown:
      r.findings.push_back(warning_finding("vfio-unknown", "cannot tell whether this kernel has vfio-pci (" + pci.evidence + ")",
                                           "check with `modinfo vfio-pci`"));
      break;
  }
}

void gpu_findings(Report& r) {
  if (r.displays.empty()) {
    r.findings.push_back(error_finding("no-gpu", "no display-class PCI device (class 03xx) on this host",
                                       "check `lspci -nn`; a GPU the firmware disabled does not appear"));
    return;
  }
  std::vector<const DisplayAnalysis*> discrete;
  for (const auto& d : r.displays) {
    if (d.discrete) discrete.push_back(&d);
    if (!d.bmc.empty())
      r.findings.push_back(info_finding("gpu-bmc", d.dev.address + " (" + ids(d.dev) + ") is not offered for passthrough: " + d.bmc,
                                        "nothing to do: a server needs it for its remote console; a GPU to pass through is a card "
                                        "of its own"));
  }
  if (discrete.empty()) {
    r.findings.push_back(error_finding("no-dgpu", "no discrete GPU: every display device here is integrated",
                                       "gpuhook passes a discrete GPU through; this machine has none to give"));
    return;
  }
  bool any_clean = std::any_of(discrete.begin(), discrete.end(), [](auto* d) { return d->isolated; });
  for (const auto* d : discrete) {
    const std::string& a = d->dev.address;
    std::string name = a + " (" + ids(d->dev) + ", " + d->dev.class_name() + ")";
    if (!d->certain)
      r.findings.push_back(warning_finding("placement-uncertain", name + ": " + d->placement_reason,
                                           "`lspci -tv` shows what shares its slot; pass it only if it is a card of its own"));
    if (d->dev.iommu_group) {
      std::vector<std::string> gs;
      for (int x : d->groups) gs.push_back(std::to_string(x));
      std::string g = (d->groups.size() > 1 ? "IOMMU groups " : "IOMMU group ") + join(gs);
      if (d->isolated) {
        r.findings.push_back(info_finding("gpu-isolated",
                                          name + " can be passed through cleanly: " + g + (d->groups.size() > 1 ? " hold" : " holds") +
                                              " only the card's functions " + join(d->functions) + " (and bridges or "
                                              "driverless host bridges, which stay on the host)",
                                          "`sudo gpuhook setup <vm> --gpu " + a + "` writes the profile and the domain (after "
                                              "showing the diff); by hand: [gpu] address = \"" + a + "\" in /etc/gpuhook/vms/<vm>.toml, "
                                              "then `gpuhook check <vm>`"));
      } else {
        std::vector<std::string> who;
        for (const auto& o : d->blocker_devices) who.push_back(describe_member(o) + (o.driver.empty() ? "" : " on " + o.driver));
        Finding f{"gpu-not-isolated", any_clean ? "warning" : "error",
                  name + " cannot be passed through cleanly: " + g + " also holds " + join(who),
                  "give the VM those devices too ([gpu] also in the profile) if the host can spare them, or move the "
                  "card to a slot with its own group (`gpuhook groups`)"};
        r.findings.push_back(f);
      }
    }
    std::string out_fix = d->outputs == Outputs::none ? "use Looking Glass or a streaming client; [display] mode = \"external\" needs an output"
                                                      : "[display] mode = \"external\" with a monitor on its output works; for the laptop panel see the MUX findings";
    r.findings.push_back(info_finding(d->outputs == Outputs::none ? "gpu-no-outputs" : "gpu-outputs", a + ": " + d->outputs_text, out_fix));
    if (r.displays.size() == 1 && d->dev.boot_vga)
      r.findings.push_back(info_finding("single-gpu", a + " is the host's only GPU and its boot display: the host has no "
                                                          "screen while the VM runs",
                                        "use [display] mode = \"takeover\" in the profile"));
  }
}

void mux_findings(Report& r) {
  bool has_igpu = std::any_of(r.displays.begin(), r.displays.end(), [](const auto& d) { return !d.discrete; });
  bool has_dgpu = std::any_of(r.displays.begin(), r.displays.end(), [](const auto& d) { return d.discrete; });
  if (r.chassis.kind == Chassis::desktop || !has_dgpu) return;
  if (r.chassis.kind == Chassis::unknown && !has_igpu) return;  // a single-GPU machine of unknown kind: no panel question
  const MuxInfo& m = r.mux;
  if (m.any_runtime())
    r.findings.push_back(info_finding("mux-runtime", "the panel can be switched while the host runs: " + m.summary(),
                                      std::string("use [display] mode = \"mux\" with method = \"") +
                                          (m.switcheroo ? "switcheroo" : "acpi") + "\""));
  for (const auto& v : m.reboot_only)
    r.findings.push_back(info_finding("mux-reboot-only",
                                      v.name + " (" + v.path + " = " + v.value + "; " + v.meaning +
                                          ") moves the panel only after a reboot",
                                      "without a reboot: [display] mode = \"looking-glass\" shows the VM on the host's panel "
                                      "(README, Display modes); or switch to dGPU-only in the firmware or vendor tool before "
                                      "starting the VM, then use [display] mode = \"external\" or \"takeover\""));
  if (!m.any_runtime() && m.reboot_only.empty())
    r.findings.push_back(info_finding("mux-none", "no MUX switch found: the built-in panel stays on the integrated GPU",
                                      "show the VM on the laptop's panel with [display] mode = \"looking-glass\" "
                                      "(config/vms/laptop-looking-glass.toml), or on an external monitor wired to the dGPU "
                                      "([display] mode = \"external\")"));
}

// What the passthrough guides leave behind: kernel options, static vfio-pci ids, reset health.
void guide_findings(Report& r, Fs& fs) {
  auto add = [&](const std::vector<Issue>& v) {
    for (const auto& i : v) r.findings.push_back({i.id, i.severity, i.message, i.fix});
  };
  add(cmdline_issues(r.iommu));
  std::vector<std::vector<std::string>> cards;
  for (const auto& d : r.displays)
    if (d.discrete) cards.push_back(d.functions);
  // The cards gpuhook binds dynamically: those of the profiles' GPUs.
  std::vector<std::string> dynamic;
  if (auto l = fs.list(kProfileDir)) {
    for (const auto& n : *l) {
      if (n.size() < 6 || n.compare(n.size() - 5, 5, ".toml") != 0) continue;
      ConfigErrors pe;
      auto p = load_profile(fs, std::string(kProfileDir) + "/" + n, {}, &pe);
      if (!p) continue;
      for (const auto& d : r.displays)
        if (d.dev.address == p->gpu_address) dynamic.insert(dynamic.end(), d.functions.begin(), d.functions.end());
    }
  }
  add(vfio_ids_issues(fs, cards, dynamic));
  for (const auto& d : r.displays)
    if (d.discrete) add(reset_issues(fs, d.dev));
}

Report build_report(Fs& fs) {
  Report r;
  r.iommu = detect_iommu(fs);
  for (const char* m : kVfioModules) r.vfio.push_back(module_info(fs, m, r.iommu.kernel_release));
  r.chassis = detect_chassis(fs);
  r.displays = analyse_displays(fs);
  r.mux = detect_mux(fs);
  iommu_findings(r);
  vfio_findings(r);
  gpu_findings(r);
  mux_findings(r);
  guide_findings(r, fs);
  return r;
}

void print_json(const Report& r, std::ostream& out) {
  const IommuInfo& i = r.iommu;
  out << "{\"iommu\":{\"enabled\":" << (i.enabled() ? "true" : "false") << ",\"groups\":" << i.groups
      << ",\"cmdline\":" << (i.cmdline_known ? json_str(i.cmdline) : "null") << ",\"cmdline_iommu\":[";
  for (size_t k = 0; k < i.cmdline_args.size(); ++k) out << (k ? "," : "") << json_str(i.cmdline_args[k]);
  out << "],\"dmar\":" << known_json(i.dmar) << ",\"ivrs\":" << known_json(i.ivrs) << ",\"units\":[";
  for (size_t k = 0; k < i.units.size(); ++k) out << (k ? "," : "") << json_str(i.units[k]);
  out << "],\"cpu_vendor\":" << null_or(i.cpu_vendor) << ",\"kernel_release\":" << null_or(i.kernel_release)
      << ",\"intel_default\":" << null_or(i.intel_default) << "},\"vfio\":[";
  for (size_t k = 0; k < r.vfio.size(); ++k)
    out << (k ? "," : "") << "{\"module\":" << json_str(r.vfio[k].name) << ",\"state\":" << json_str(to_string(r.vfio[k].state)) << "}";
  out << "],\"machine\":{\"chassis\":" << json_str(to_string(r.chassis.kind)) << ",\"evidence\":" << null_or(r.chassis.evidence)
      << "},\"gpus\":[";
  for (size_t k = 0; k < r.displays.size(); ++k) {
    const auto& d = r.displays[k];
    const auto& v = d.dev;
    out << (k ? "," : "") << "{\"address\":" << json_str(v.address) << ",\"vendor\":" << json_str(v.vendor)
        << ",\"device\":" << json_str(v.device) << ",\"subsystem_vendor\":" << null_or(v.subsystem_vendor)
        << ",\"subsystem_device\":" << null_or(v.subsystem_device) << ",\"class\":" << json_str(v.class4())
        << ",\"class_name\":" << json_str(v.class_name()) << ",\"driver\":" << null_or(v.driver)
        << ",\"boot_vga\":" << (v.boot_vga ? "true" : "false")
        << ",\"iommu_group\":" << (v.iommu_group ? std::to_string(*v.iommu_group) : "null") << ",\"groups\":[";
    for (size_t m = 0; m < d.groups.size(); ++m) out << (m ? "," : "") << d.groups[m];
    out << "],\"group_devices\":[";
    for (size_t m = 0; m < d.group_others.size(); ++m) out << (m ? "," : "") << json_str(d.group_others[m].address);
    out << "],\"discrete\":" << (d.discrete ? "true" : "false") << ",\"placement_certain\":" << (d.certain ? "true" : "false")
        << ",\"placement\":" << json_str(d.placement_reason) << ",\"functions\":[";
    for (size_t m = 0; m < d.functions.size(); ++m) out << (m ? "," : "") << json_str(d.functions[m]);
    out << "],\"bmc\":" << null_or(d.bmc) << ",\"isolated\":" << (d.isolated ? "true" : "false") << ",\"blockers\":[";
    for (size_t m = 0; m < d.blockers.size(); ++m) out << (m ? "," : "") << json_str(d.blockers[m]);
    out << "],\"outputs\":" << json_str(to_string(d.outputs)) << "}";
  }
  out << "],\"mux\":{\"switcheroo\":" << (r.mux.switcheroo ? "true" : "false")
      << ",\"switcheroo_state\":" << null_or(r.mux.switcheroo_state) << ",\"acpi_call\":" << (r.mux.acpi_call ? "true" : "false")
      << ",\"reboot_only\":[";
  for (size_t k = 0; k < r.mux.reboot_only.size(); ++k) {
    const auto& v = r.mux.reboot_only[k];
    out << (k ? "," : "") << "{\"name\":" << json_str(v.name) << ",\"path\":" << json_str(v.path)
        << ",\"value\":" << json_str(v.value) << ",\"meaning\":" << json_str(v.meaning) << "}";
  }
  out << "]},\"findings\":";
  print_findings_json(out, r.findings);
  out << "}\n";
}

void print_human(const Report& r, std::ostream& out) {
  const IommuInfo& i = r.iommu;
  out << "IOMMU: " << (i.enabled() ? "on, " + std::to_string(i.groups) + " groups" : std::string("off or unknown (no groups)")) << "\n";
  if (i.cmdline_known)
    out << "  kernel command line: " << (i.cmdline_args.empty() ? "no IOMMU option" : join(i.cmdline_args, " ")) << "\n";
  out << "  firmware tables: DMAR (Intel VT-d) " << known_text(i.dmar) << ", IVRS (AMD-Vi) " << known_text(i.ivrs) << "\n";
  if (!i.units.empty()) out << "  IOMMU units: " << join(i.units, " ") << "\n";
  out << "vfio:";
  for (const auto& m : r.vfio) out << " " << m.name << " " << to_string(m.state) << ";";
  out << "\nmachine: " << to_string(r.chassis.kind) << (r.chassis.evidence.empty() ? "" : " (" + r.chassis.evidence + ")") << "\n";
  out << "\nDisplay devices (PCI class 03xx): " << r.displays.size() << "\n";
  for (const auto& d : r.displays) {
    const auto& v = d.dev;
    out << "  " << v.address << "  " << v.class_name() << " [" << v.class4() << "] " << ids(v)
        << (v.subsystem_vendor.empty() ? "" : " subsystem " + v.subsystem_vendor + ":" + v.subsystem_device)
        << (v.driver.empty() ? ", no driver" : ", driver " + v.driver) << (v.boot_vga ? ", boot VGA" : "") << "\n";
    out << "      " << d.placement_reason << "\n";
    if (!v.iommu_group) {
      out << "      no IOMMU group\n";
    } else {
      out << "      IOMMU group " << *v.iommu_group << ": ";
      if (d.group_others.empty()) out << "nothing else";
      else {
        std::vector<std::string> m;
        for (const auto& o : d.group_others) m.push_back(describe_member(o));
        out << "also " << join(m);
      }
      out << "\n";
      if (d.discrete) {
        out << "      functions of the card: " << join(d.functions) << "\n";
        out << "      passthrough: " << (d.isolated ? "clean (its groups hold only the card's functions)" : "blocked by " + join(d.blockers)) << "\n";
      }
    }
    if (d.discrete) out << "      " << d.outputs_text << "\n";
  }
  out << "\nMUX: " << r.mux.summary() << "\n";
  for (const auto& v : r.mux.reboot_only) out << "  " << v.name << " = " << v.value << " (" << v.meaning << ", reboot only)\n";
  out << "\nFindings:\n";
  print_findings_human(out, r.findings);
}

}  // namespace

int verb_doctor(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream&) {
  Report r = build_report(app.host.fs);
  if (inv.json) print_json(r, out);
  else print_human(r, out);
  return has_errors(r.findings) ? 1 : 0;
}

}  // namespace gpuhook
