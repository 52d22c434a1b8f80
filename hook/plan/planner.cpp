#include "plan/planner.h"

#include <algorithm>

#include "plan/tuning_plan.h"
#include "steps/steps.h"
#include "sysinfo/gpus.h"
#include "sysinfo/kmod.h"
#include "sysinfo/mux.h"
#include "sysinfo/procs.h"
#include "sysinfo/pci.h"

namespace gpuhook {

StepList& phase_steps(Plan& plan, const std::string& phase) {
  if (phase == "start") return plan.start;
  if (phase == "started") return plan.started;
  return plan.prepare;
}

Error refusal(std::string id, std::string what, std::string why, std::string hint) {
  Error e;
  e.id = std::move(id);
  e.what = std::move(what);
  e.why = std::move(why);
  e.hint = std::move(hint);
  return e;
}

namespace {

bool is_fb_console(Fs& fs, const std::string& vt) {
  std::string name = read_attr(fs, "/sys/class/vtconsole/" + vt + "/name");
  return name.find("frame buffer") != std::string::npos;
}

bool module_builtin(Fs& fs, const std::string& name) {
  // Built-in modules have no initstate; they may have /sys/module/<m> (with parameters) or not.
  std::string m = module_name(name);
  return fs.is_dir("/sys/module/" + m) && !fs.exists("/sys/module/" + m + "/initstate");
}

// Other display devices with a driver: is the GPU the host's only active display? Reads only
// each device's class, and the driver of display devices (a host has dozens of devices).
bool other_active_display(Fs& fs, PciSysfs& pci, const std::vector<std::string>& ours) {
  for (const auto& a : pci.addresses()) {
    if (std::find(ours.begin(), ours.end(), a) != ours.end()) continue;
    std::string dir = pci.device_path(a);
    if (read_attr(fs, dir + "/class").rfind("0x03", 0) != 0) continue;
    std::string drv = link_name(fs, dir + "/driver");
    if (!drv.empty() && drv != "vfio-pci" && drv != "pci-stub") return true;
  }
  return false;
}

// Whether a frame buffer console or framebuffer device sits on this PCI device.
bool console_on(Fs& fs, const std::string& addr) {
  auto l = fs.list("/sys/class/graphics");
  if (!l) return false;
  for (const auto& fb : *l) {
    auto c = fs.canonical("/sys/class/graphics/" + fb);
    if (c && c->find("/" + addr + "/") != std::string::npos) return true;
  }
  return false;
}

std::string group_list(const std::vector<int>& g) {
  std::string s;
  for (size_t i = 0; i < g.size(); ++i) s += (i ? (i + 1 == g.size() ? " and " : ", ") : "") + std::to_string(g[i]);
  return s;
}

std::unique_ptr<Step> profile_command(const Profile& p, const ProfileCommand& c) {
  return make_command("command (" + p.path + ":" + std::to_string(c.line) + ")", c.run, c.undo);
}

}  // namespace

Plan make_plan(Host& host, const Profile& p, const DomainInfo* domain, const std::string& vm) {
  Plan plan;
  Fs& fs = host.fs;
  PciSysfs pci(fs, PciSysfs::Memo::on);  // planning changes nothing: each device is read once
  const std::string& gpu = p.gpu_address;

  auto gdev = pci.device(gpu);
  if (!gdev) {
    plan.refusals.push_back(refusal("gpu-missing", "the GPU " + gpu + " of " + p.path + " does not exist on this host",
                                    "no " + std::string(kPciDevices) + "/" + gpu,
                                    "find the right address with `gpuhook doctor` and fix [gpu] address"));
    return plan;
  }
  if (!gdev->iommu_group) {
    plan.refusals.push_back(refusal("iommu-off", "the IOMMU is off: " + gpu + " has no IOMMU group", "",
                                    "enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (Intel); "
                                    "`gpuhook doctor` checks it"));
    return plan;
  }
  plan.group = *gdev->iommu_group;

  // Devices that go to vfio-pci: the functions of the card (its slot, and every endpoint below
  // its own PCIe switch, in whatever IOMMU group: sysinfo/gpus.h card_of), those listed in
  // [gpu] also, and the domain's managed='no' hostdevs (libvirt binds managed='yes' ones itself).
  // Every group of the card goes whole: each of its other members must be listed in `also`, or be
  // a PCI-to-PCI bridge (stays on pcieport: VFIO accepts any driver on a device whose header is
  // not a normal one), or a bridge-class device without a driver (left unassigned).
  Card card = card_of(fs, pci, *gdev, pci.addresses());
  plan.groups = card.groups;
  std::vector<std::string> devices = card.functions;
  std::vector<std::string> blockers;
  for (const auto& d : card.others) {
    bool listed = std::find(p.also.begin(), p.also.end(), d.address) != p.also.end();
    if (listed) devices.push_back(d.address);
    else if (std::find(card.blockers.begin(), card.blockers.end(), d.address) != card.blockers.end())
      blockers.push_back(describe_device(d));
    else if (!d.is_pci_bridge())
      plan.notes.push_back(describe_device(d) + " shares IOMMU group " + (d.iommu_group ? std::to_string(*d.iommu_group) : "?") +
                           " without a driver: left as it is, not given to the VM");
  }
  for (const auto& f : card.functions)
    if (auto d = pci.device(f); d && !d->iommu_group)
      plan.refusals.push_back(refusal("iommu-off", "the IOMMU is off for " + f + ", a function of the card " + gpu + ": it has no IOMMU group", "",
                                      "enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (Intel); `gpuhook doctor` checks it"));
  for (const auto& a : p.also) {
    auto d = pci.device(a);
    if (!d || !d->iommu_group || std::find(card.groups.begin(), card.groups.end(), *d->iommu_group) == card.groups.end())
      plan.refusals.push_back(refusal("group-incomplete", "[gpu] also lists " + a + ", which is not in IOMMU group " + std::to_string(plan.group) +
                                          (card.groups.size() > 1 ? " or another group of the card" : ""),
                                      "", "remove it from [gpu] also; `gpuhook groups` shows the group"));
  }
  if (!blockers.empty()) {
    std::string list;
    for (const auto& b : blockers) list += (list.empty() ? "" : "; ") + b;
    plan.refusals.push_back(refusal("group-incomplete",
        std::string(card.groups.size() > 1 ? "the IOMMU groups" : "IOMMU group") + " " + group_list(card.groups) + " of " + gpu +
            " also hold" + (card.groups.size() > 1 ? "" : "s") + " devices that are not the card's: " + list,
        "the kernel lets QEMU use a group only when every device in it is given to vfio-pci",
        "list each of them in [gpu] also if the VM may have them too, or move the GPU to a slot with "
        "its own group; `gpuhook groups` shows the group"));
  }
  if (domain) {
    for (const auto& h : domain->hostdevs) {
      if (h.managed || std::find(devices.begin(), devices.end(), h.address) != devices.end()) continue;
      auto d = pci.device(h.address);
      if (!d) {
        plan.refusals.push_back(refusal("hostdev-address", "the domain's hostdev " + h.address + " does not exist on this host", "",
                                        "fix the <hostdev> address in the domain XML (virsh edit " + vm + ")"));
        continue;
      }
      devices.push_back(h.address);
    }
  }
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
  plan.devices = devices;

  // The GPU drives the host's only display: only takeover may take it.
  if (p.mode != DisplayMode::takeover && (gdev->boot_vga || console_on(fs, gpu)) && !other_active_display(fs, pci, devices)) {
    plan.refusals.push_back(refusal("display-in-use", gpu + " drives the host's only active display",
                                    std::string("boot_vga=") + (gdev->boot_vga ? "1" : "0") + ", display mode '" +
                                        to_string(p.mode) + "'",
                                    "use [display] mode = \"takeover\" (the host's desktop stops while the VM runs)"));
  }

  // MUX mode: the chosen runtime switch must exist; reboot-only vendor switches are never written.
  if (p.mode == DisplayMode::mux) {
    MuxInfo mux = detect_mux(fs);
    bool have = p.mux_method == MuxMethod::switcheroo ? mux.switcheroo : mux.acpi_call;
    if (!have) {
      std::string hint = p.mux_method == MuxMethod::switcheroo
                             ? "vga_switcheroo needs debugfs mounted and both GPU drivers registered with it; "
                             : "load the acpi_call module (Debian: acpi-call-dkms); ";
      if (!mux.reboot_only.empty())
        hint += "this machine's " + mux.reboot_only.front().name + " only switches after a reboot: set it in "
                "the firmware or vendor tool and use [display] mode = \"external\" or \"takeover\"";
      else
        hint += "`gpuhook doctor` lists what this machine offers";
      plan.refusals.push_back(refusal("mux-unavailable", std::string("display mode 'mux' with method '") + to_string(p.mux_method) +
                                          "' is not available on this machine",
                                      "it offers: " + mux.summary(), hint));
    }
  }

  bool systemd = systemd_running(fs);
  bool stops_services = !p.stop_services.empty() && systemd;
  bool nvidia_control = std::any_of(p.unload_modules.begin(), p.unload_modules.end(),
                                    [](const std::string& m) { return module_name(m).rfind("nvidia", 0) == 0; });
  // Holders, before any change. Stopping the display manager ends the user's session and their
  // unsaved work: a refusal found after it has already cost them everything. So every holder is
  // found now: with nothing to stop first, any holder refuses; with units to stop, a holder that
  // none of them runs (and, when a display manager stops, that is not in a login session it
  // ends) refuses now too. The holders step after the services re-checks what is left.
  bool holders_checked = false;
  if (p.holders == HolderPolicy::refuse) {
    std::vector<std::pair<std::string, std::string>> nodes;
    for (const auto& a : devices) {
      auto d = pci.device(a);
      for (auto& n : device_nodes_of(fs, a, d && d->driver == "nvidia", nvidia_control))
        nodes.emplace_back(n, n.rfind("/dev/nvidia", 0) == 0 ? "" : a);
    }
    auto hs = find_holders(fs, nodes, host.signals.self_pid());
    std::vector<std::string> stopping;
    bool stops_dm = false;
    if (stops_services)
      for (const auto& u : p.stop_services) {
        std::string real = unit_alias_target(fs, u);
        stopping.push_back(u);
        stopping.push_back(real);
        for (const char* dm : {"display-manager.service", "gdm.service", "gdm3.service", "sddm.service", "lightdm.service",
                               "lxdm.service", "xdm.service", "greetd.service", "slim.service", "ly.service"})
          stops_dm |= (u == dm || real == dm);
      }
    std::string list;
    bool nvidia = false;
    for (const auto& h : hs) {
      std::string unit = unit_of_process(fs, h.pid);
      bool goes = stops_services && !unit.empty() &&
                  (std::find(stopping.begin(), stopping.end(), unit) != stopping.end() ||
                   (stops_dm && unit.rfind("session-", 0) == 0 && unit.size() > 6 &&
                    unit.compare(unit.size() - 6, 6, ".scope") == 0));
      if (goes) continue;
      list += (list.empty() ? "" : ", ") + h.name + " (" + std::to_string(h.pid) + ") holds " + h.node +
              (h.address.empty() ? "" : " (" + h.address + ")") +
              (stops_services ? " and runs in " + (unit.empty() ? std::string("no unit") : unit) : "");
      nvidia |= h.node.rfind("/dev/nvidia", 0) == 0;
    }
    if (!list.empty()) {
      std::string why = stops_services ? "no unit in [host] stop_services runs it, so stopping them would not free the "
                                         "GPU; refused before stopping anything"
                                       : "";
      if (nvidia) why += std::string(why.empty() ? "" : "; ") + "the NVIDIA driver blocks in unbind while its node is open";
      plan.refusals.push_back(refusal("gpu-in-use", "the GPU is in use: " + list, why,
                                      "close these programs, or stop the service that runs them ([host] stop_services), "
                                      "or set [host] holders = \"terminate\""));
    }
    holders_checked = !stops_services;  // nothing stops first: this scan is the step's scan
  }
  // Modules, before any change: a module to unload that another loaded module uses (not one this
  // profile unloads too) makes `modprobe -r` fail after the desktop has stopped.
  for (const auto& m : p.unload_modules) {
    std::string mn = module_name(m);
    auto users = fs.list("/sys/module/" + mn + "/holders");
    if (!users) continue;
    for (const auto& u : *users) {
      bool ours = std::any_of(p.unload_modules.begin(), p.unload_modules.end(),
                              [&](const std::string& x) { return module_name(x) == u; });
      if (ours) continue;
      plan.refusals.push_back(refusal("module-in-use", "module " + mn + " in [host] unload_modules is used by module " + u +
                                                           ", which the profile does not unload",
                                      "modprobe -r " + mn + " would fail after the services had stopped",
                                      "add \"" + u + "\" to [host] unload_modules before \"" + mn + "\""));
    }
  }
  // [tuning] and Looking Glass (plan/tuning_plan.cpp): refused here too, before any change.
  TuningPlan tuning = plan_tuning(host, p, domain, vm);
  for (auto& r : tuning.refusals) plan.refusals.push_back(std::move(r));
  for (auto& n : tuning.notes) plan.notes.push_back(std::move(n));
  if (!plan.refusals.empty()) return plan;
  // Before the first start: the firmware framebuffer and its console do not survive vfio-pci.
  if (auto n = firmware_fb_loss(fs, gpu); !n.empty()) plan.notes.push_back(n);

  // 1. claims
  for (const auto& a : devices) plan.prepare.push_back(make_claim(a, vm));
  // 1b. tuning: huge pages first (the likeliest to be refused), CPUs, governor, inhibitor, shared memory
  for (auto& s : tuning.steps) plan.prepare.push_back(std::move(s));
  // 2. services
  if (!p.stop_services.empty()) {
    if (!systemd) plan.notes.push_back("systemd is not running: [host] stop_services skipped (" +
                                       std::to_string(p.stop_services.size()) + " unit(s))");
    else
      for (const auto& u : p.stop_services) plan.prepare.push_back(make_service_stop(u));
  }
  // 3. consoles
  if (p.unbind_consoles) {
    if (auto l = fs.list("/sys/class/vtconsole"); l)
      for (const auto& vt : *l)
        if (read_attr(fs, "/sys/class/vtconsole/" + vt + "/bind") == "1" && is_fb_console(fs, vt))
          plan.prepare.push_back(make_vtcon_unbind(vt));
  }
  // 4. boot framebuffer: it lives on the boot VGA device
  if (p.release_framebuffer && gdev->boot_vga) {
    if (auto l = fs.list("/sys/bus/platform/devices"); l)
      for (const auto& dev : *l) {
        if (dev.rfind("efi-framebuffer", 0) != 0 && dev.rfind("simple-framebuffer", 0) != 0 &&
            dev.rfind("vesa-framebuffer", 0) != 0)
          continue;
        std::string drv = link_name(fs, "/sys/bus/platform/devices/" + dev + "/driver");
        if (!drv.empty()) plan.prepare.push_back(make_fb_release(dev, drv));
      }
  }
  // 5. switcheroo before the dGPU driver goes
  if (p.mode == DisplayMode::mux && p.mux_method == MuxMethod::switcheroo) plan.prepare.push_back(make_switcheroo());
  // 6. holders (already checked above when nothing before this step can free the GPU)
  if (!holders_checked)
    plan.prepare.push_back(make_holders(devices, p.holders == HolderPolicy::terminate, nvidia_control));
  // 7. modules
  for (const auto& m : p.unload_modules) {
    if (module_builtin(fs, m)) {
      plan.notes.push_back("module " + m + " is built into the kernel and cannot be unloaded; the unbind does its job");
      continue;
    }
    if (read_attr(fs, "/sys/module/" + module_name(m) + "/initstate") != "live") {
      plan.notes.push_back("module " + m + " is not loaded: nothing to unload");
      continue;
    }
    plan.prepare.push_back(make_module_unload(module_name(m)));
  }
  // 8. vfio-pci
  if (!fs.is_dir(std::string(kPciDrivers) + "/vfio-pci"))
    plan.prepare.push_back(make_module_load("vfio-pci", std::string(kPciDrivers) + "/vfio-pci", !p.unload_vfio));
  // 9. the devices
  for (const auto& a : devices) {
    auto d = pci.device(a);
    plan.prepare.push_back(make_pci_vfio(a, d ? d->driver : ""));
  }
  // 10. panel switch
  if (p.mode == DisplayMode::mux && p.mux_method == MuxMethod::acpi)
    plan.prepare.push_back(make_acpi_mux(p.acpi_dgpu, p.acpi_igpu));
  if (p.mode == DisplayMode::command)
    plan.prepare.push_back(make_command("display switch", p.switch_cmd, p.restore_cmd));
  // 11. profile commands, and the later phases
  for (const auto& c : p.commands)
    if (c.when == "prepare") plan.prepare.push_back(profile_command(p, c));
  plan.start = later_phase_steps(p, "start");
  plan.started = later_phase_steps(p, "started");
  return plan;
}

StepList later_phase_steps(const Profile& p, const std::string& phase) {
  StepList steps;
  if (phase == "started" && p.mode == DisplayMode::ddc)
    steps.push_back(make_ddc_input(p.ddc_bus, p.ddc_vm_input, p.ddc_host_input.value_or(-1)));
  if (phase == "started" && p.mode == DisplayMode::looking_glass)
    steps.push_back(make_lg_client(p.looking_glass.user, p.looking_glass.client));
  for (const auto& c : p.commands)
    if (c.when == phase) steps.push_back(profile_command(p, c));
  return steps;
}

}  // namespace gpuhook
