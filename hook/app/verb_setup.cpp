// gpuhook setup VM [--gpu ADDRESS] [--mode MODE] [--dry-run] [--yes] [--connect URI]
// gpuhook setup VM --undo [--yes] [--connect URI]
//
// From a bare host to a working passthrough in one command:
//   1. the GPU: the one clean discrete GPU (doctor's reading: its card's functions, its groups,
//      no blockers, no BMC display), or --gpu; refused with the list when ambiguous;
//   2. the display mode: takeover when the GPU drives the only display, else external, or --mode;
//   3. the profile /etc/gpuhook/vms/VM.toml (root, 0600, commented with what was chosen and why);
//      an existing profile is never overwritten unless it is exactly what setup writes now;
//   4. the domain, through libvirt's API (never files under /etc/libvirt): one managed='no'
//      hostdev per function of the card, and the subsystem ids of an NVIDIA laptop GPU
//      (domain/domain_edit.h); firmware and machine type are reported, never changed;
//   5. the diff of both, a question on the terminal (without one and without --yes: exit 2,
//      nothing changed; --dry-run: the diff only), a backup of the domain XML it replaces in
//      /var/lib/gpuhook/backups/ (0700, files 0600), then the changes;
//   6. what `gpuhook check VM` says about the result.
// --undo redefines the newest backup and removes the profile setup wrote (after the diff).
// Never from inside the hook: libvirtd waits for its hook, and a hook calling libvirt deadlocks.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "app/diff.h"
#include "app/setup.h"
#include "app/verbs.h"
#include "domain/domain_edit.h"
#include "profile/profile.h"
#include "steps/steps.h"
#include "sysinfo/gpus.h"
#include "sysinfo/kmod.h"
#include "sysinfo/machine.h"

namespace gpuhook {
namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string name_of(const DisplayAnalysis& d) {
  return d.dev.address + " (" + d.dev.vendor + ":" + d.dev.device + ", " + d.dev.class_name() + ")";
}

// Why a display device is not offered, one clause.
std::string why_not(const DisplayAnalysis& d) {
  if (!d.bmc.empty()) return d.bmc;
  if (!d.discrete) return d.placement_reason;
  if (!d.dev.iommu_group) return "it has no IOMMU group (the IOMMU is off: `gpuhook doctor` says why)";
  std::vector<std::string> b;
  for (const auto& o : d.blocker_devices) b.push_back(describe_device(o));
  return "its IOMMU group also holds " + join(b, "; ");
}

bool console_on(Fs& fs, const std::string& addr) {
  auto l = fs.list("/sys/class/graphics");
  if (!l) return false;
  for (const auto& fb : *l) {
    auto c = fs.canonical("/sys/class/graphics/" + fb);
    if (c && c->find("/" + addr + "/") != std::string::npos) return true;
  }
  return false;
}

// The GPU drives the host's only active display: the boot display (or a console on it) and no
// other display device with a host driver.
bool drives_only_display(Fs& fs, const DisplayAnalysis& gpu, const std::vector<DisplayAnalysis>& all) {
  if (!gpu.dev.boot_vga && !console_on(fs, gpu.dev.address)) return false;
  for (const auto& d : all) {
    if (has(gpu.functions, d.dev.address)) continue;
    if (!d.dev.driver.empty() && d.dev.driver != "vfio-pci" && d.dev.driver != "pci-stub") return false;
  }
  return true;
}

// The last line of a profile setup writes: a checksum of everything above it, so that setup can
// tell its own, unedited profile (which it may replace or remove) from one a person edited.
const char* kChecksumTag = "# gpuhook setup checksum: ";

std::string checksum(std::string_view s) {
  unsigned long long h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", h);
  return b;
}

std::string with_checksum(const std::string& body) { return body + kChecksumTag + checksum(body) + "\n"; }

// Whether a profile is one setup wrote and nobody edited since.
bool unedited_setup_profile(const std::string& text) {
  if (text.rfind(kSetupMarker, 0) != 0) return false;
  size_t at = text.rfind(kChecksumTag);
  if (at == std::string::npos || (at > 0 && text[at - 1] != '\n')) return false;
  std::string tail = text.substr(at + std::string(kChecksumTag).size());
  return tail == checksum(std::string_view(text).substr(0, at)) + "\n";
}

struct Choice {
  const DisplayAnalysis* gpu = nullptr;
  std::string gpu_reason, mode, mode_reason;
};

// The backups of a VM's domain: "<vm>.<NNNN>.xml", numbered from 1; the newest has the highest number.
std::vector<std::pair<int, std::string>> backups_of(Fs& fs, const std::string& vm) {
  std::vector<std::pair<int, std::string>> v;
  auto l = fs.list(kBackupDir);
  if (!l) return v;
  for (const auto& n : *l) {
    if (n.size() <= vm.size() + 5 || n.compare(0, vm.size() + 1, vm + ".") != 0 || n.compare(n.size() - 4, 4, ".xml") != 0) continue;
    std::string num = n.substr(vm.size() + 1, n.size() - vm.size() - 5);
    if (num.empty() || num.size() > 6 || num.find_first_not_of("0123456789") != std::string::npos) continue;
    v.emplace_back(std::stoi(num), std::string(kBackupDir) + "/" + n);
  }
  std::sort(v.begin(), v.end());
  return v;
}

// Asks on the terminal; false (and the reason printed) when the changes must not be made.
int confirm(const Invocation& inv, bool tty, std::istream& answer, std::ostream& out, std::ostream& err, const char* what) {
  if (inv.yes) return 0;
  if (!tty) {
    err << "gpuhook: setup: no terminal to ask on, and no --yes: nothing changed. Run it again with --yes to " << what
        << (inv.undo ? "" : " (or --dry-run to only see the diff)") << "\n";
    return 2;
  }
  out << "\n" << (inv.undo ? "Undo" : "Apply") << " these changes? [y/N] " << std::flush;
  std::string line;
  std::getline(answer, line);
  if (line == "y" || line == "Y" || line == "yes") return 0;
  out << "nothing changed\n";
  return 1;
}

std::string profile_text(Fs& fs, const std::string& vm, const Choice& c) {
  const PciDevice& g = c.gpu->dev;
  std::string t = std::string(kSetupMarker) + "\n";
  t += "# The profile of VM " + vm + ": gpuhook gives it the GPU below at each start and gives it back at each stop.\n";
  t += "# To start over: gpuhook setup " + vm + " --undo (restores the domain, removes this file). Reference: README,\n";
  t += "# Profile reference; `gpuhook check " + vm + "` checks it against the host and the domain.\n#\n";
  t += "# GPU: " + name_of(*c.gpu) + (g.driver.empty() ? "" : ", driver " + g.driver) + ".\n";
  t += "#   Chosen because " + c.gpu_reason + ".\n";
  t += "#   The functions of its card, each bound to vfio-pci at VM start: " + join(c.gpu->functions) + ".\n";
  t += "[gpu]\naddress = \"" + g.address + "\"\n\n";
  t += "# Display mode " + c.mode + ": " + c.mode_reason + ".\n";
  if (c.mode == "takeover")
    t += "# takeover stops display-manager.service, unbinds the frame buffer consoles and releases the boot\n"
         "# framebuffer while the VM runs; release brings the desktop back.\n";
  t += "[display]\nmode = \"" + c.mode + "\"\n";
  std::vector<std::string> mods, units;
  if (g.driver == "nvidia") {
    for (const char* m : {"nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"})
      if (read_attr(fs, std::string("/sys/module/") + m + "/initstate") == "live") mods.push_back(std::string("\"") + m + "\"");
    if (unit_installed(fs, "nvidia-persistenced.service")) units.push_back("\"nvidia-persistenced.service\"");
  }
  if (!mods.empty() || !units.empty()) {
    t += "\n# The GPU is on NVIDIA's driver: what holds it is stopped and its modules unloaded while the VM runs,\n"
         "# and brought back after.\n[host]\n";
    if (!units.empty()) t += "stop_services = [" + join(units) + "]\n";
    if (!mods.empty()) t += "unload_modules = [" + join(mods) + "]\n";
  }
  return t;
}

int undo(AppContext& app, const Invocation& inv, DomainStore& store, bool tty, std::istream& answer, std::ostream& out,
         std::ostream& err) {
  Fs& fs = app.host.fs;
  const std::string& vm = inv.args[0];
  auto b = backups_of(fs, vm);
  if (b.empty()) {
    err << "gpuhook: setup --undo: no backup of domain " << vm << " in " << kBackupDir << ": nothing to undo (setup keeps one "
        << "each time it changes the domain)\n";
    return 1;
  }
  const std::string& path = b.back().second;
  auto old = fs.read(path);
  if (!old) {
    err << "gpuhook: setup --undo: cannot read " << path << ": " << old.error().message() << "\n";
    return 1;
  }
  auto cur = store.xml(vm);
  std::string now = cur ? *cur : std::string();
  std::string prof = profile_path(vm);
  auto ptext = fs.read(prof);
  bool remove_profile = ptext && unedited_setup_profile(*ptext);
  std::string d1 = unified_diff(now, *old, "domain " + vm + " (libvirt, now)", "domain " + vm + " (backup " + path + ")");
  std::string d2 = remove_profile ? unified_diff(*ptext, "", prof + " (now)", prof + " (removed)") : "";
  if (d1.empty() && d2.empty()) {
    out << "nothing to undo: domain " << vm << " is already as in " << path << (ptext ? "" : ", and it has no profile") << "\n";
    if (ptext && !remove_profile) out << "  " << prof << " was not written by setup, or was edited since: left alone\n";
    return 0;
  }
  out << d1 << d2;
  if (ptext && !remove_profile) out << "note: " << prof << " was not written by setup, or was edited since: it stays\n";
  if (int rc = confirm(inv, tty, answer, out, err, "undo"); rc) return rc;
  if (!d1.empty()) {
    if (auto s = store.define(*old); !s) {
      err << "gpuhook: setup --undo: " << s.error().message() << "\n";
      return 1;
    }
    out << "domain " << vm << " redefined from " << path << "\n";
  }
  if (remove_profile) {
    if (auto s = fs.remove(prof); !s) {
      err << "gpuhook: setup --undo: cannot remove " << prof << ": " << s.error().message() << "\n";
      return 1;
    }
    out << prof << " removed\n";
  }
  return 0;
}

}  // namespace

int run_setup(AppContext& app, const Invocation& inv, DomainStore& store, bool tty, std::istream& answer, std::ostream& out,
              std::ostream& err) {
  Fs& fs = app.host.fs;
  const std::string& vm = inv.args[0];
  if (auto why = vm_name_problem(vm); !why.empty()) {
    err << "gpuhook: refusing VM name: " << why << "\n";
    return 2;
  }
  std::string parent = read_attr(fs, "/proc/" + std::to_string(::getppid()) + "/comm");
  if (parent == "libvirtd" || parent == "virtqemud") {
    err << "gpuhook: setup refuses to run from inside libvirt's hook (its parent is " << parent << "): libvirtd waits for the "
        << "hook, so changing a domain from there deadlocks. Run it from a shell\n";
    return 2;
  }
  if (inv.undo) return undo(app, inv, store, tty, answer, out, err);

  auto displays = analyse_displays(fs);
  Choice c;
  if (!inv.gpu.empty()) {
    auto a = PciAddress::parse(inv.gpu);
    const DisplayAnalysis* found = nullptr;
    for (const auto& d : displays)
      if (a && d.dev.address == a->str()) found = &d;
    if (!found) {
      err << "gpuhook: setup: --gpu " << inv.gpu << " is not a display device of this host; `gpuhook doctor` lists them\n";
      return 1;
    }
    if (!found->bmc.empty() || !found->isolated) {
      err << "gpuhook: setup: --gpu " << name_of(*found) << " cannot be given to a VM cleanly: " << why_not(*found) << "\n"
          << "gpuhook: what to do: `gpuhook doctor` shows what blocks it; setup never gives a VM devices other than the card's "
             "(list them in [gpu] also by hand if the host can spare them)\n";
      return 1;
    }
    c.gpu = found;
    c.gpu_reason = "it was asked for (--gpu)";
    if (!found->discrete)
      out << "note: doctor calls " << found->dev.address << " integrated (" << found->placement_reason
          << "); it is passed as asked, with the functions of its slot\n";
  } else {
    std::vector<const DisplayAnalysis*> clean;
    for (const auto& d : displays)
      if (d.discrete && d.isolated) clean.push_back(&d);
    if (clean.size() != 1) {
      err << "gpuhook: setup: " << (clean.empty() ? "no discrete GPU of this host can be given to a VM cleanly"
                                                   : "more than one discrete GPU can be given to a VM: choose one with --gpu ADDRESS")
          << "\n";
      for (const auto& d : displays)
        err << "  " << name_of(d) << ": " << (d.discrete && d.isolated ? "can be passed through" : why_not(d)) << "\n";
      if (displays.empty()) err << "  (no display device at all)\n";
      err << "gpuhook: what to do: `gpuhook doctor` says more\n";
      return 1;
    }
    c.gpu = clean.front();
    c.gpu_reason = "it is the only discrete GPU here that can be passed through cleanly (its IOMMU group" +
                   std::string(c.gpu->groups.size() > 1 ? "s hold" : " holds") + " only the card's functions)";
  }
  bool only = drives_only_display(fs, *c.gpu, displays);
  if (!inv.mode.empty()) {
    if (inv.mode != "external" && inv.mode != "takeover") {
      err << "gpuhook: setup: --mode " << inv.mode << ": setup writes external or takeover; mux, ddc and command need "
          << "settings only you know: write them into the profile by hand (README, Display modes)\n";
      return 2;
    }
    if (inv.mode == "external" && only) {
      err << "gpuhook: setup: --mode external: " << c.gpu->dev.address << " drives the host's only display, so prepare would "
          << "refuse the VM; use --mode takeover (or leave --mode out)\n";
      return 1;
    }
    c.mode = inv.mode;
    c.mode_reason = "asked for (--mode)";
  } else if (only) {
    c.mode = "takeover";
    c.mode_reason = "the GPU drives the host's only display, so the host's desktop stops while the VM runs";
  } else {
    c.mode = "external";
    c.mode_reason = "another display device drives the host's screen; the VM shows on the GPU's own outputs";
  }

  // The profile.
  std::string prof = profile_path(vm);
  std::string ptext = with_checksum(profile_text(fs, vm, c));
  auto existing = fs.read(prof);
  if (existing && *existing != ptext && !unedited_setup_profile(*existing)) {
    bool ours = existing->rfind(kSetupMarker, 0) == 0;
    err << "gpuhook: setup: " << prof << " exists and " << (ours ? "was edited since setup wrote it" : "was not written by setup")
        << ": setup never overwrites it\n"
        << "gpuhook: what to do: to start over, move it away (or `gpuhook setup " << vm << " --undo` for the domain) and run "
        << "setup again; or keep it and check it with `gpuhook check " << vm << "`\n";
    return 1;
  }

  // The domain.
  auto cur = store.xml(vm);
  if (!cur) {
    err << "gpuhook: setup: " << cur.error().message() << "\n";
    if (!cur.error().hint.empty()) err << "gpuhook: what to do: " << cur.error().hint << "\n";
    return 1;
  }
  DomainEditSpec spec;
  spec.functions = c.gpu->functions;
  spec.gpu = c.gpu->dev.address;
  const PciDevice& g = c.gpu->dev;
  const std::string& sv = g.subsystem_vendor;
  auto hex_id = [](const std::string& x) {
    return !x.empty() && x.size() <= 4 && x.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (g.vendor == "10de" && hex_id(sv) && hex_id(g.subsystem_device) && sv != "0000" && sv != "10de" &&
      detect_chassis(fs).kind != Chassis::desktop) {
    spec.subsystem = true;
    spec.sub_vendor = static_cast<unsigned>(std::strtoul(sv.c_str(), nullptr, 16));
    spec.sub_device = static_cast<unsigned>(std::strtoul(g.subsystem_device.c_str(), nullptr, 16));
  }
  auto edit = edit_domain_for_card(*cur, spec);
  if (!edit) {
    err << "gpuhook: setup: " << edit.error().message() << "\n";
    return 1;
  }

  out << "GPU: " << name_of(*c.gpu) << ": " << c.gpu_reason << "\n";
  out << "  functions of the card: " << join(c.gpu->functions) << "\n";
  out << "display mode: " << c.mode << ": " << c.mode_reason << "\n";
  for (const auto& ch : edit->changes) out << "  change: " << ch << "\n";
  for (const auto& n : edit->notes) out << "  note: " << n << "\n";
  bool profile_changes = !existing || *existing != ptext;
  if (!edit->changed() && !profile_changes) {
    out << "nothing to change: domain " << vm << " and " << prof << " are already as setup makes them\n";
  } else {
    out << "\n"
        << unified_diff(*cur, edit->xml, "domain " + vm + " (libvirt, now)", "domain " + vm + " (after setup)")
        << unified_diff(existing ? *existing : std::string(), ptext, prof + (existing ? " (now)" : " (none)"), prof + " (after setup)");
    if (inv.dry_run) {
      out << "\ndry run: nothing changed\n";
      return 0;
    }
    if (int rc = confirm(inv, tty, answer, out, err, "apply"); rc) return rc;
    if (edit->changed()) {
      auto b = backups_of(fs, vm);
      char num[16];
      std::snprintf(num, sizeof num, "%04d", b.empty() ? 1 : b.back().first + 1);
      std::string bpath = std::string(kBackupDir) + "/" + vm + "." + num + ".xml";
      if (auto s = fs.make_dirs(kBackupDir, 0700); !s) {
        err << "gpuhook: setup: cannot create " << kBackupDir << ": " << s.error().message() << "; nothing changed\n";
        return 1;
      }
      if (auto s = fs.write_atomic(bpath, *cur, 0600); !s) {
        err << "gpuhook: setup: cannot write the backup " << bpath << ": " << s.error().message() << "; nothing changed\n";
        return 1;
      }
      if (auto s = store.define(edit->xml); !s) {
        err << "gpuhook: setup: " << s.error().message() << "\n";
        if (!s.error().hint.empty()) err << "gpuhook: what to do: " << s.error().hint << "\n";
        return 1;
      }
      out << "domain " << vm << " redefined; the old definition is in " << bpath << " (`gpuhook setup " << vm << " --undo`)\n";
    }
    if (profile_changes) {
      std::string dir = dirname_of(prof);
      if (auto s = fs.make_dirs(dir, 0755); !s) {
        err << "gpuhook: setup: cannot create " << dir << ": " << s.error().message() << "\n";
        return 1;
      }
      if (auto s = fs.write_atomic(prof, ptext, 0600); !s) {
        err << "gpuhook: setup: cannot write " << prof << ": " << s.error().message() << (edit->changed() ? " (the domain was changed: `gpuhook setup " + vm + " --undo` restores it)" : "") << "\n";
        return 1;
      }
      out << prof << " written\n";
    }
  }
  // The last word is check's, on the domain as libvirt has it now.
  auto after = store.xml(vm);
  Invocation ci = inv;
  ci.verb = "check";
  ci.json = false;
  out << "\n";
  return run_check(app, ci, after ? &*after : nullptr, out, err);
}

int verb_setup(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  auto store = libvirt_store(inv.connect);
  return run_setup(app, inv, *store, ::isatty(0) == 1, std::cin, out, err);
}

}  // namespace gpuhook
