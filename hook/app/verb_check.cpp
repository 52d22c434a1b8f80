// gpuhook check VM: the profile against this host and against the VM's libvirt domain.
//   host side:   the planner's refusals (exactly what prepare would refuse: make_plan), vfio-pci,
//                modules and units the profile names, the display mode's tools
//   domain side: read-only through libvirt (or --xml FILE); never from inside a hook. The GPU's
//                functions are hostdevs, managed= agrees with the hook, the sub-vendor override of
//                NVIDIA laptop GPUs, UEFI firmware, q35.
// Finding ids are stable and documented (README: setup commands). Exit 1 when one is an error.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "version.h"
#include "app/findings.h"
#include "app/libvirt_dl.h"
#include "app/verbs.h"
#include "domain/domain_xml.h"
#include "plan/planner.h"
#include "sysinfo/tuning_facts.h"
#include "steps/steps.h"
#include "sysinfo/gpus.h"
#include "sysinfo/guides.h"
#include "sysinfo/iommu.h"
#include "sysinfo/kmod.h"
#include "sysinfo/machine.h"

namespace gpuhook {
namespace {

constexpr size_t kMaxXml = 8u << 20;

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Which finding a planner refusal is: its stable id, set where the planner refuses.
std::string refusal_id(const Error& e) { return e.id.empty() ? "prepare-refused" : e.id; }





struct Checker {
  AppContext& app;
  const Invocation& inv;
  std::string vm;
  std::vector<Finding> f;
  const std::string* xml_text = nullptr;  // the domain XML given by the caller (setup)

  void add(Finding x) { f.push_back(std::move(x)); }

  // The domain XML from --xml or libvirt; nullopt (and a finding) when unreadable.
  std::optional<std::string> domain_xml() {
    if (xml_text) return *xml_text;
    if (!inv.xml_file.empty()) {
      std::ifstream in(inv.xml_file, std::ios::binary);
      if (!in) {
        add(error_finding("domain-unreadable", "cannot read the domain XML file " + inv.xml_file + ": " + std::strerror(errno),
                          "give the path of a file written by `virsh dumpxml --inactive " + vm + "`"));
        return std::nullopt;
      }
      std::string x(kMaxXml, '\0');
      in.read(x.data(), static_cast<std::streamsize>(x.size()));
      x.resize(static_cast<size_t>(in.gcount()));
      return x;
    }
    auto r = libvirt_domain_xml(inv.connect, vm);
    if (!r) {
      add(error_finding("domain-unreadable", "cannot read the libvirt domain of " + vm + ": " + r.error().message(),
                        (r.error().hint.empty() ? std::string() : r.error().hint + "; ") +
                            "or pass the domain XML with --xml FILE (virsh dumpxml --inactive " + vm + " > FILE)"));
      return std::nullopt;
    }
    return *r;
  }

  void host_side(const Profile& p, const DomainInfo* dom, const std::optional<DisplayAnalysis>& gpu) {
    Fs& fs = app.host.fs;
    ModuleInfo vfio = module_info(fs, "vfio_pci");
    if (vfio.state == ModuleState::missing)
      add(error_finding("vfio-missing", "this kernel has no vfio-pci (" + vfio.evidence + ")",
                        "boot a kernel built with CONFIG_VFIO_PCI (Debian's linux-image-amd64 has it)"));

    Plan plan = make_plan(app.host, p, dom, vm);
    for (const auto& e : plan.refusals) {
      std::string id = refusal_id(e);
      if (id == "hostdev-address") continue;  // domain_side reports every hostdev address itself
      std::string sev = id == "gpu-in-use" ? "warning" : "error";
      std::string msg = e.message() + (id == "gpu-in-use" ? " (now; prepare would refuse while this lasts)" : "");
      add({id, sev, msg, e.hint});
    }

    if (auto n = firmware_fb_loss(fs, p.gpu_address); !n.empty())
      add(warning_finding("framebuffer-until-reboot", n,
                          "nothing to do for the desktop; the text console returns at the next reboot, or when a DRM "
                          "driver with a framebuffer binds " + p.gpu_address));

    for (const auto& m : p.unload_modules) {
      ModuleInfo mi = module_info(fs, m);
      if (mi.state == ModuleState::builtin)
        add(warning_finding("module-builtin", "module " + m + " in [host] unload_modules is built into the kernel (" + mi.evidence +
                                                  "): it cannot be unloaded",
                            "remove it from unload_modules; unbinding the device does the work for a built-in driver"));
      else if (mi.state == ModuleState::missing)
        add(warning_finding("module-unknown", "module " + m + " in [host] unload_modules does not exist in this kernel (" +
                                                  mi.evidence + ")",
                            "check the name (`lsmod` shows the loaded ones: nvidia_drm, nvidia_modeset, nvidia_uvm, nvidia)"));
    }

    if (!p.stop_services.empty()) {
      if (!systemd_running(fs)) {
        add(info_finding("systemd-absent", "systemd is not running: [host] stop_services (" + std::to_string(p.stop_services.size()) +
                                               " unit(s)) will be skipped",
                         "stop those programs another way, e.g. [[commands]] when = \"prepare\""));
      } else {
        for (const auto& u : p.stop_services)
          if (!unit_installed(fs, u))
            add(error_finding("unit-missing", "unit " + u + " in [host] stop_services is not installed (no unit file in "
                                                            "/etc, /run, /lib or /usr/lib systemd/system)",
                              "fix the name (`systemctl list-units --type=service` shows them) or remove it"));
      }
    }

    display_mode(p, gpu);
    guides(gpu);
  }

  void add_issues(const std::vector<Issue>& v) {
    for (const auto& i : v) add({i.id, i.severity, i.message, i.fix});
  }

  // What the guides leave behind on the host: kernel options, static vfio-pci ids, reset health.
  void guides(const std::optional<DisplayAnalysis>& gpu) {
    Fs& fs = app.host.fs;
    add_issues(cmdline_issues(detect_iommu(fs)));
    std::vector<std::vector<std::string>> cards;
    if (gpu) cards.push_back(gpu->functions);
    add_issues(vfio_ids_issues(fs, cards, gpu ? gpu->functions : std::vector<std::string>{}));
    if (gpu) add_issues(reset_issues(fs, gpu->dev));
  }

  // Hostdevs the host needs for itself, and ROM settings.
  void domain_guides(const Profile* p, const DomainInfo& d) {
    Fs& fs = app.host.fs;
    PciSysfs pci(fs);
    auto critical = host_critical_devices(fs);
    for (const auto& h : d.hostdevs) {
      auto dev = pci.device(h.address);
      if (!dev) continue;
      std::string c = dev->class4();
      std::string loses;
      if (bridges_above_device(fs, h.address) == 0) {
        if (c == "0600") loses = "the processor's host bridge (memory controller registers)";
        else if (c == "0601") loses = "its LPC/eSPI bridge, and with it the embedded controller, keyboard, fans, battery and TPM behind it";
        else if (c == "0c05") loses = "its SMBus, over which it reads sensors and the memory's SPD";
        else if (c == "0c80") loses = "a chipset controller (the SPI flash that holds the firmware, or another platform bus)";
      }
      for (const auto& [a, why] : critical)
        if (a == h.address) loses = why;
      std::string where = "domain " + d.name + (h.line ? " line " + std::to_string(h.line) : std::string());
      if (!loses.empty())
        add(error_finding("hostdev-host-critical",
                          where + ": <hostdev> " + describe_device(*dev) + " gives the VM a device the host needs: the host loses " + loses +
                              " while the VM runs (no GPU needs it)",
                          "remove that <hostdev> (virsh edit " + vm + "); pass only the card's functions (`gpuhook doctor` lists them)"));
      bool is_gpu = p && h.address == p->gpu_address;
      bool display_fn = is_gpu || dev->is_display();  // a GPU's ROM belongs to a display function
      if (!h.rom_file.empty()) {
        auto r = fs.read(h.rom_file);
        if (!r) {
          add(error_finding("rom-missing", where + ": <rom file='" + h.rom_file + "'/> of hostdev " + h.address + " cannot be read (" +
                                               r.error().message() + "): QEMU refuses to start the VM",
                            "put the ROM file there (readable by QEMU), or remove the <rom file=...> element"));
        } else if (r->size() < 2 || static_cast<unsigned char>((*r)[0]) != 0x55 || static_cast<unsigned char>((*r)[1]) != 0xaa) {
          char sig[16];
          std::snprintf(sig, sizeof sig, "%02x%02x", r->size() > 0 ? static_cast<unsigned char>((*r)[0]) : 0,
                        r->size() > 1 ? static_cast<unsigned char>((*r)[1]) : 0);
          add(error_finding("rom-signature", where + ": the ROM file " + h.rom_file + " of hostdev " + h.address + " starts with 0x" + sig +
                                                 ", not the PCI option ROM signature 0x55aa: the guest's firmware ignores it or hangs",
                            "use a ROM dumped from this card (a vendor's update tool's file often has a header to strip before the 55 aa)"));
        }
        if (!display_fn)
          add(warning_finding("rom-wrong-function", where + ": hostdev " + h.address + " (" + dev->class_name() + ") carries <rom file='" +
                                                        h.rom_file + "'/>, but a GPU's ROM belongs to its display function only" +
                                                        (p ? " (" + p->gpu_address + ")" : ""),
                              "remove the <rom file=...> element from that hostdev"));
      }
      if (is_gpu && h.rom_bar == "off")
        add(warning_finding("rom-bar-off", where + ": the GPU " + h.address + " has <rom bar='off'/>: the VM's firmware cannot run the "
                                                   "card's ROM, so the GPU shows nothing until the guest's driver starts",
                            "remove rom bar='off' unless a guide for this exact card asks for it"));
    }
  }

  void display_mode(const Profile& p, const std::optional<DisplayAnalysis>& gpu) {
    Fs& fs = app.host.fs;
    if (p.mode == DisplayMode::ddc) {
      if (!app.host.runner.has_program("ddcutil"))
        add(error_finding("display-unsupported", "display mode 'ddc' needs ddcutil, which is not installed",
                          "apt install ddcutil (and load i2c-dev)"));
      std::string bus = "/dev/i2c-" + std::to_string(p.ddc_bus);
      if (fs.is_dir("/dev") && !fs.exists(bus))
        add(warning_finding("display-unsupported", "display mode 'ddc' uses " + bus + ", which does not exist now",
                            "modprobe i2c-dev; `ddcutil detect` shows the bus of each monitor"));
    }
    if (p.mode == DisplayMode::command) {
      for (const auto* cmd : {&p.switch_cmd, &p.restore_cmd}) {
        if (cmd->empty()) continue;
        FileInfo fi = fs.stat((*cmd)[0]);
        if (fi.type != FileType::regular || (fi.mode & 0111) == 0)
          add(error_finding("display-unsupported", "display mode 'command' runs " + (*cmd)[0] + ", which is " +
                                                       (fi.type == FileType::missing ? "missing" : "not an executable file"),
                            "install it or fix [display.command] in " + p.path));
      }
    }
    if (p.mode == DisplayMode::looking_glass) {
      // The domain's <shmem> and its size are the planner's refusals (lg-shmem-missing, lg-shmem-size).
      const auto& client = p.looking_glass.client;
      FileInfo fi = client.empty() ? FileInfo{} : fs.stat(client[0]);
      if (!client.empty() && (fi.type != FileType::regular || (fi.mode & 0111) == 0))
        add(error_finding("display-unsupported", "display mode 'looking-glass' runs " + client[0] + ", which is " +
                                                     (fi.type == FileType::missing ? "missing" : "not an executable file"),
                          "build and install looking-glass-client (its version must match the Windows host application), "
                          "or fix [display.looking_glass] client in " + p.path));
      if (auto u = lookup_user(fs, p.looking_glass.user); u && session_environment(fs, u->uid).empty())
        add(warning_finding("lg-no-session", p.looking_glass.user + " has no graphical session now (no process of theirs has "
                                                                    "WAYLAND_DISPLAY or DISPLAY)",
                            "log in to the desktop before starting the VM, or the client starts without a display"));
    }
    if (p.mode == DisplayMode::external && gpu && gpu->outputs == Outputs::none)
      add(warning_finding("gpu-no-outputs", "display mode 'external' expects a monitor on " + gpu->dev.address + ", but its " +
                                                gpu->outputs_text,
                          "show the VM with Looking Glass or a streaming client; the mode itself changes nothing on the host"));
  }

  void domain_side(const Profile* p, const DomainInfo& d, const std::optional<DisplayAnalysis>& gpu) {
    if (!inv.xml_file.empty() && !d.name.empty() && d.name != vm)
      add(warning_finding("domain-name", "the domain XML in " + inv.xml_file + " is for domain " + d.name + ", not " + vm,
                          "pass the XML of " + vm + " (virsh dumpxml --inactive " + vm + ")"));
    std::string machine = d.machine;
    if (machine != "q35" && machine.rfind("pc-q35-", 0) != 0)
      add(warning_finding("machine-not-q35", "domain " + d.name + " uses machine type '" + (machine.empty() ? "?" : machine) +
                                                 "', not q35: the GPU sits on a PCI bus without PCIe root ports",
                          "create the VM with the q35 chipset (virt-install --machine q35; virt-manager: Chipset Q35)"));
    if (!d.uefi)
      add(warning_finding("firmware-not-uefi", "domain " + d.name + " boots with legacy BIOS (SeaBIOS), not UEFI",
                          "use OVMF: <os firmware='efi'> (apt install ovmf); modern GPUs and Windows 11 expect UEFI"));
    domain_guides(p, d);
    if (!p) return;

    std::vector<std::string> hostdevs;
    for (const auto& h : d.hostdevs) hostdevs.push_back(h.address);
    for (const auto& h : d.hostdevs)
      if (!PciSysfs(app.host.fs).exists(h.address))
        add(error_finding("hostdev-address", "the domain's hostdev " + h.address + " does not exist on this host",
                          "fix the <hostdev> address (virsh edit " + vm + "); `gpuhook groups` lists the devices"));
    if (!gpu) return;

    // What the hook binds to vfio-pci: the endpoints of the GPU's slot in its group, and [gpu] also.
    std::vector<std::string> bound = gpu->functions;
    for (const auto& a : p->also)
      if (!has(bound, a)) bound.push_back(a);
    for (const auto& a : bound) {
      if (has(hostdevs, a)) continue;
      auto dev = PciSysfs(app.host.fs).device(a);
      std::string what = a + (dev ? " (" + dev->class_name() + ")" : "");
      bool is_gpu = a == p->gpu_address;
      add({"hostdev-missing", is_gpu ? "error" : "warning",
           what + " goes to vfio-pci in prepare but is not a <hostdev type='pci'> of domain " + d.name +
               (is_gpu ? ": the VM does not get the GPU" : ": the VM does not get this function of the GPU"),
           "virsh edit " + vm + ": add <hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x" +
               a.substr(0, 4) + "' bus='0x" + a.substr(5, 2) + "' slot='0x" + a.substr(8, 2) + "' function='0x" +
               a.substr(11, 1) + "'/></source></hostdev>"});
    }
    for (const auto& h : d.hostdevs)
      if (h.managed && has(bound, h.address))
        add(warning_finding("hostdev-managed",
                            "hostdev " + h.address + " is managed='yes': libvirt then also detaches it from its host driver at "
                            "start and may re-attach it at stop, before gpuhook's release runs, while gpuhook binds it to "
                            "vfio-pci in prepare and restores it from its journal in release; two owners of one device",
                            "set managed='no' on that <hostdev> (virsh edit " + vm + ")"));
    subsystem_override(*p, d, *gpu);
  }

  // NVIDIA laptop GPUs: in the VM the GPU shows the subsystem ids QEMU gives it (often 0000:0000)
  // unless the domain sets the real ones; Windows then may not find or install its driver. Rule: an
  // NVIDIA (10de) discrete GPU whose subsystem vendor is not NVIDIA's own, in a machine that is not
  // a desktop (a laptop maker's ids; desktop cards work without). Error on a laptop, warning when
  // the machine's kind is unknown.
  void subsystem_override(const Profile& p, const DomainInfo& d, const DisplayAnalysis& gpu) {
    const PciDevice& g = gpu.dev;
    const std::string& sv = g.subsystem_vendor;
    if (g.vendor != "10de" || !gpu.discrete || sv.empty() || sv == "0000" || sv == "10de") return;
    ChassisInfo ch = detect_chassis(app.host.fs);
    if (ch.kind == Chassis::desktop) return;
    std::string alias;
    for (const auto& h : d.hostdevs)
      if (h.address == p.gpu_address) alias = h.alias;
    std::vector<const QemuProp*> vend, dev;
    for (const auto& pr : d.qemu_props) {
      if (pr.name == "x-pci-sub-vendor-id") vend.push_back(&pr);
      if (pr.name == "x-pci-sub-device-id") dev.push_back(&pr);
    }
    std::string machine_kind = ch.kind == Chassis::laptop ? "a laptop (" + ch.evidence + ")" : "a machine that may be a laptop (its kind is unknown)";
    std::string ids = sv + ":" + g.subsystem_device + " (" + std::to_string(parse_id("0x" + sv)) + ", " +
                      std::to_string(parse_id("0x" + g.subsystem_device)) + ")";
    std::string paste = "`gpuhook ids " + g.address + "` prints the XML to paste" +
                        (alias.empty() ? "" : ", with alias '" + alias + "' (the GPU hostdev's)");
    if (vend.empty() || dev.empty()) {
      add({"subsystem-override-missing", ch.kind == Chassis::laptop ? "error" : "warning",
           g.address + " is an NVIDIA GPU in " + machine_kind + " with the laptop maker's subsystem ids " + ids +
               ", and domain " + d.name + " does not set " + (vend.empty() && dev.empty() ? "them" : vend.empty() ? "the vendor id" : "the device id") +
               " (x-pci-sub-vendor-id/x-pci-sub-device-id through qemu:override or qemu:commandline -set): in the VM "
               "the GPU then shows other subsystem ids and Windows may not find or install its driver",
           paste});
      return;
    }
    auto targets = [&](const std::vector<const QemuProp*>& v) {
      return std::any_of(v.begin(), v.end(), [&](const QemuProp* pr) { return pr->alias == alias; });
    };
    if (!alias.empty() && (!targets(vend) || !targets(dev))) {
      add(warning_finding("subsystem-override-alias",
                          "domain " + d.name + " sets the subsystem ids for device alias '" + vend.front()->alias +
                              "', but libvirt will name the GPU's hostdev " + p.gpu_address + " '" + alias + "'",
                          "use alias '" + alias + "' in the override, or give the GPU hostdev <alias name='ua-gpu'/> and use "
                          "'ua-gpu' (`virsh dumpxml " + vm + "` of the running VM shows the aliases)"));
      return;
    }
    const QemuProp* v = vend.front();
    const QemuProp* w = dev.front();
    for (auto* x : vend)
      if (x->alias == alias) v = x;
    for (auto* x : dev)
      if (x->alias == alias) w = x;
    if (parse_id(v->value) != parse_id("0x" + sv) || parse_id(w->value) != parse_id("0x" + g.subsystem_device))
      add(warning_finding("subsystem-override-mismatch",
                          "domain " + d.name + " sets subsystem ids " + v->value + ":" + w->value + ", but " + g.address +
                              " has " + ids,
                          paste));
    double ver = machine_version(d.machine);
    if (v->form == "commandline" && w->form == "commandline" && ver >= 7.0)
      add(warning_finding("subsystem-override-ignored",
                          "domain " + d.name + " sets the subsystem ids with qemu:commandline -set, but its machine " + d.machine +
                              " means QEMU 7.0 or later, where libvirt defines devices in JSON and -set may not reach them",
                          "use the qemu:override form instead: " + paste));
  }
};

}  // namespace

int verb_check(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  return run_check(app, inv, nullptr, out, err);
}

int run_check(AppContext& app, const Invocation& inv, const std::string* xml_text, std::ostream& out, std::ostream& err) {
  const std::string& vm = inv.args[0];
  if (auto why = vm_name_problem(vm); !why.empty()) {
    err << "gpuhook: refusing VM name: " << why << "\n";
    return 2;
  }
  Checker c{app, inv, vm, {}, xml_text};
  Fs& fs = app.host.fs;

  std::optional<Profile> profile;
  ConfigErrors ge;
  auto g = load_global(fs, kGlobalConfig, &ge);
  if (!g) {
    c.add(error_finding("profile-invalid", "the global configuration " + std::string(kGlobalConfig) + " is invalid: " + ge.text(),
                        "fix the lines named (README: Profile reference)"));
  } else if (!fs.exists(profile_path(vm))) {
    c.add(error_finding("profile-missing", "VM " + vm + " has no profile (" + profile_path(vm) + "): gpuhook leaves it alone",
                        "write one from the examples in " + std::string(kExamplesDir) + ", with the [gpu] address "
                        "`gpuhook doctor` shows"));
  } else {
    ConfigErrors pe;
    auto p = load_profile(fs, profile_path(vm), g->timeouts, &pe);
    if (p) profile = *p;
    else {
      std::string lines = pe.text();
      while (!lines.empty() && lines.back() == '\n') lines.pop_back();
      c.add(error_finding("profile-invalid", "the profile of " + vm + " is invalid: " + lines,
                          "fix the lines named (README: Profile reference); prepare refuses the VM until then"));
    }
  }

  std::optional<DomainInfo> dom;
  if (auto xml = c.domain_xml()) {
    auto d = parse_domain_xml(*xml);
    if (!d && d.error().id == "domain-xml-invalid")
      c.add(error_finding("domain-xml-invalid", "the domain XML of " + vm + (inv.xml_file.empty() ? "" : " in " + inv.xml_file) + " does not parse: " +
                                                    d.error().why,
                          "fix the XML at that line and column (a tag without its closing '>' is the usual cause)"));
    else if (!d)
      c.add(error_finding("domain-unreadable", "cannot read the domain XML of " + vm + ": " + d.error().message(),
                          "`virsh dumpxml --inactive " + vm + "` should print it; check the file given with --xml"));
    else
      dom = *d;
  }

  std::optional<DisplayAnalysis> gpu;
  if (profile) {
    gpu = analyse_display(fs, profile->gpu_address);
    c.host_side(*profile, dom ? &*dom : nullptr, gpu);
  }
  if (dom) c.domain_side(profile ? &*profile : nullptr, *dom, gpu);

  if (inv.json) {
    out << "{\"vm\":" << json_str(vm) << ",\"findings\":";
    print_findings_json(out, c.f);
    out << "}\n";
  } else {
    out << "Check of VM " << vm << ": profile " << profile_path(vm) << ", domain from "
        << (xml_text ? std::string("libvirt, as setup left it") : inv.xml_file.empty() ? "libvirt" + (inv.connect.empty() ? std::string() : " at " + inv.connect) : inv.xml_file)
        << "\n";
    if (c.f.empty()) out << "  no problems found\n";
    print_findings_human(out, c.f);
    int e = 0, w = 0;
    for (const auto& x : c.f) e += x.severity == "error", w += x.severity == "warning";
    out << e << " error(s), " << w << " warning(s)\n";
  }
  return has_errors(c.f) ? 1 : 0;
}

}  // namespace gpuhook
