#include "app/args.h"

#include <algorithm>

namespace gpuhook {

bool is_hook_name(const std::string& argv0) {
  std::string s = argv0;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  auto slash = s.rfind('/');
  std::string base = slash == std::string::npos ? s : s.substr(slash + 1);
  if (base == "qemu") return true;
  if (slash == std::string::npos) return false;
  std::string dir = s.substr(0, slash);
  auto s2 = dir.rfind('/');
  std::string dbase = s2 == std::string::npos ? dir : dir.substr(s2 + 1);
  return dbase == "qemu.d";
}

const std::vector<std::string>& verbs() {
  static const std::vector<std::string> v = {"doctor", "groups", "ids", "check", "setup", "plan", "status", "restore", "log", "hook"};
  return v;
}

namespace {
struct VerbSpec {
  const char* name;
  size_t min_args, max_args;
  const char* synopsis;
  const char* summary;  // one line for `gpuhook --help`
  const char* help;
};
const VerbSpec kVerbs[] = {
    {"doctor", 0, 0, "doctor",
     "is this host ready for passthrough, and which GPU can go", "Checks the host for GPU passthrough: IOMMU, vfio modules, every display device, its\n"
                               "IOMMU group and whether it can be passed through cleanly, and the MUX switches this\n"
                               "machine offers. Each finding comes with a next step. Exit 1 when something blocks.\n"
                               "Start here; then `gpuhook groups`, `gpuhook ids ADDRESS`, `gpuhook check VM`.\n"
                               "--json: {\"iommu\":{...},\"vfio\":[...],\"machine\":{...},\"gpus\":[...],\"mux\":{...},\"findings\":[...]}"},
    {"groups", 0, 0, "groups",
     "every IOMMU group and its devices", "Lists every IOMMU group and its devices, sorted numerically, with class, ids and driver.\n"
                               "Exit 1 when there are no groups (the IOMMU is off; `gpuhook doctor` says why).\n"
                               "--json: {\"groups\":[{\"id\":N,\"devices\":[{\"address\",\"vendor\",\"device\",\"class\",\"driver\",...}]}]}"},
    {"ids", 1, 1, "ids ADDRESS",
     "a device's ids in hex and decimal, and the XML that sets them", "Vendor, device and subsystem ids of a PCI device in hex and decimal, and the XML that\n"
                                 "sets the subsystem ids in the domain (qemu:override for QEMU >= 7.0, and the older\n"
                                 "qemu:commandline form). ADDRESS: 0000:01:00.0 or 01:00.0. Exit 1 when the device or its\n"
                                 "subsystem ids are missing."},
    {"check", 1, 1, "check VM [--connect URI] [--xml FILE]",
     "a VM's profile against this host and its domain",
     "Checks the profile of VM against this host (addresses, IOMMU group, modules, units, display mode)\n"
     "and against its libvirt domain, read-only: hostdevs, managed=, sub-vendor override, UEFI, q35.\n"
     "Every finding comes with its fix. Exit 1 when a finding is an error.\n"
     "  --connect URI  libvirt URI to read the domain from (default: libvirt's, qemu:///system as root)\n"
     "  --xml FILE     read the domain XML from FILE instead (offline use, bug reports)\n"
     "--json: {\"vm\":\"...\",\"findings\":[{\"id\",\"severity\",\"message\",\"fix\"}]}"},
    {"setup", 1, 1, "setup VM [--gpu A] [--mode M] [--dry-run] [--yes] [--undo]",
     "give VM the discrete GPU: profile and domain, with a backup",
     "Sets VM up for passthrough in one step: chooses the GPU (the one clean discrete GPU, or --gpu)\n"
     "and the display mode (takeover when the GPU drives the only display, else external, or --mode),\n"
     "writes /etc/gpuhook/vms/VM.toml (root, 0600, commented) and edits the domain through libvirt:\n"
     "one <hostdev type='pci' managed='no'> per function of the card, and for an NVIDIA GPU with a\n"
     "laptop maker's subsystem ids the qemu override. Shows the diff of both and asks; keeps the\n"
     "domain XML it replaces in /var/lib/gpuhook/backups/. Firmware and machine type are reported,\n"
     "never changed. Ends with what `gpuhook check VM` says. A second run changes nothing.\n"
     "  --gpu ADDRESS  the GPU, when the host has several (refused with the list when ambiguous)\n"
     "  --mode MODE    external or takeover\n"
     "  --dry-run      print the diff, change nothing\n"
     "  --yes          apply without asking (without a terminal and without --yes: exit 2, nothing changed)\n"
     "  --connect URI  libvirt URI (default: libvirt's, qemu:///system as root)\n"
     "  --undo         redefine the newest backup of VM's domain (after showing the diff) and remove the\n"
     "                 profile setup wrote"},
    {"plan", 1, 1, "plan VM [--xml FILE]",
     "the exact steps a start of VM would take, or why it would refuse", "Prints the exact steps a prepare of VM would take on this host, in order, or why it\n"
                              "would refuse. Changes nothing.\n"
                              "  --xml FILE     the domain XML (virsh dumpxml VM): its managed='no' hostdevs, and what\n"
                              "                 [tuning] and Looking Glass need (huge pages, pinning, <shmem>); without it\n"
                              "                 those steps are only named in the notes"},
    {"status", 0, 0, "status",
     "what each VM holds now, and anything inconsistent", "VMs with profiles, the devices each holds (from the journals), the driver of each\n"
                               "device now, and anything inconsistent. Exit 1 when something is inconsistent."},
    {"restore", 0, 1, "restore VM [--force] [--all-modules] | restore --all-modules",
     "undo a VM's journal by hand",
     "Undoes VM's journal (/run/gpuhook/VM.journal) by hand, as release does: for recovering after\n"
     "a crash or a release that could not finish. It needs no profile and ignores the global config.\n"
     "It takes the same locks as the hook (it waits for a running event of any VM, then names it if\n"
     "that takes too long), and it refuses, naming the process, while a process (the VM's QEMU)\n"
     "still holds the /dev/vfio/N of a group the journal bound: taking the GPU from a running VM\n"
     "crashes it. Safe to run twice; does nothing without a journal.\n"
     "  --force        restore even then: the devices are unbound under that process (stop the VM first)\n"
     "  --all-modules  then also unload the modules gpuhook loaded and kept loaded after their VM\n"
     "                 ([host] unload_vfio = false, the default: vfio-pci), when no device uses them;\n"
     "                 without VM, only that"},
    {"log", 0, 1, "log [VM] [--events N] [--follow]",
     "what happened in the last events, step by step",
     "What happened: the last N events (default 1) of VM, or of every VM, from the log file\n"
     "(/var/log/gpuhook/gpuhook.log and its rotated files), one block per event: what libvirt asked,\n"
     "each step and undo with its duration, the failure with its hint, and for a release whether\n"
     "the host was restored. Exit 1 when there is no such event.\n"
     "  --events N  the last N events (0: all that the log files still hold)\n"
     "  --follow    then wait for new lines and print them as they come (Ctrl-C ends)\n"
     "--json: {\"events\":[{\"vm\",\"op\",\"pid\",\"start\",\"end\",\"result\",\"summary\",\"duration_ms\",\n"
     "         \"steps\":[...],\"undos\":[...],\"failure\",\"hint\",\"host_restored\",\"host_checked\",\"not_back\",\"lines\":[...]}]}\n"
     "         (with --follow, then one {\"time\",\"level\",\"vm\",\"op\",\"pid\",\"message\"} per new line)"},
    {"hook", 3, 4, "hook VM OPERATION SUB-OPERATION [EXTRA]",
     "run the libvirt hook path by hand",
     "Runs the libvirt hook path by hand, exactly as libvirtd would (domain XML on stdin)."},
};
const VerbSpec* find_verb(const std::string& v) {
  for (const auto& s : kVerbs)
    if (v == s.name) return &s;
  return nullptr;
}
}  // namespace

std::string usage() {
  std::string u =
      "usage: gpuhook [--root DIR] [--json] VERB [ARGS]\n"
      "Gives a libvirt VM the discrete GPU and screen, and gives them back afterwards.\n"
      "Installed as /etc/libvirt/hooks/qemu (or in hooks/qemu.d/), libvirtd runs it on every VM event.\n\n"
      "verbs:\n";
  for (const auto& s : kVerbs) {
    std::string line = std::string("  ") + s.synopsis;
    line.resize(std::max<size_t>(line.size() + 2, 44), ' ');
    u += line + s.summary + "\n";
  }
  u += "\noptions:\n"
       "  --root DIR   read and change the host tree under DIR instead of / (tests, bug reports)\n"
       "  --json       machine-readable output (doctor, groups, ids, check, plan, status, log)\n"
       "  --help       this text, or a verb's: gpuhook VERB --help\n"
       "  --version    the version\n\n"
       "profiles: /etc/gpuhook/vms/<vm>.toml   log: /var/log/gpuhook/gpuhook.log   state: /run/gpuhook/\n";
  return u;
}

std::string verb_help(const std::string& verb) {
  const VerbSpec* s = find_verb(verb);
  if (!s) return usage();
  return std::string("usage: gpuhook [--root DIR] [--json] ") + s->synopsis + "\n\n" + s->help + "\n";
}

Invocation parse_args(const std::vector<std::string>& argv) {
  Invocation inv;
  if (argv.empty()) {
    inv.error = "no arguments";
    return inv;
  }
  if (is_hook_name(argv[0])) {
    // libvirtd: <vm> <operation> <sub-operation> <extra>; never options.
    inv.from_libvirt = true;
    if (argv.size() < 4) {
      inv.error = "a libvirt hook needs at least 3 arguments: <vm> <operation> <sub-operation> [<extra>]";
      return inv;
    }
    inv.kind = Invocation::Kind::hook;
    inv.vm = argv[1];
    inv.op = argv[2];
    inv.sub = argv[3];
    inv.extra = argv.size() > 4 ? argv[4] : "-";
    return inv;
  }
  size_t i = 1;
  for (; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--root") {
      if (i + 1 >= argv.size() || argv[i + 1].empty()) {
        inv.error = "--root needs a directory";
        return inv;
      }
      inv.root = argv[++i];
    } else if (a.rfind("--root=", 0) == 0) {
      inv.root = a.substr(7);
      if (inv.root.empty()) {
        inv.error = "--root needs a directory";
        return inv;
      }
    } else if (a == "--json") {
      inv.json = true;
    } else if (a == "--help" || a == "-h") {
      inv.kind = Invocation::Kind::help;
      return inv;
    } else if (a == "--version" || a == "-V") {
      inv.kind = Invocation::Kind::version;
      return inv;
    } else if (a.rfind("-", 0) == 0 && a != "-") {
      inv.error = "unknown option " + a;
      return inv;
    } else {
      break;
    }
  }
  if (i >= argv.size()) {
    inv.error = "no verb given";
    return inv;
  }
  inv.verb = argv[i++];
  const VerbSpec* spec = find_verb(inv.verb);
  if (!spec) {
    inv.error = "unknown verb '" + inv.verb + "'";
    return inv;
  }
  std::vector<std::string> rest;
  for (; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (inv.verb != "hook" && (a == "--help" || a == "-h")) inv.help = true;
    else if (inv.verb != "hook" && a == "--json") inv.json = true;
    else if (inv.verb != "hook" && a == "--root" && i + 1 < argv.size()) {
      inv.root = argv[++i];
      if (inv.root.empty()) {
        inv.error = "--root needs a directory";
        return inv;
      }
    }
    else if ((inv.verb == "check" && (a == "--connect" || a.rfind("--connect=", 0) == 0)) ||
             ((inv.verb == "check" || inv.verb == "plan") && (a == "--xml" || a.rfind("--xml=", 0) == 0))) {
      std::string name = a.substr(0, a.find('='));
      std::string value;
      if (a.find('=') != std::string::npos) value = a.substr(a.find('=') + 1);
      else if (i + 1 < argv.size()) value = argv[++i];
      if (value.empty()) {
        inv.error = name + (name == "--xml" ? " needs a file" : " needs a libvirt URI");
        return inv;
      }
      (name == "--xml" ? inv.xml_file : inv.connect) = value;
    }
    else if (inv.verb == "restore" && a == "--force") inv.force = true;
    else if (inv.verb == "restore" && a == "--all-modules") inv.all_modules = true;
    else if (inv.verb == "setup" && (a == "--dry-run" || a == "--yes" || a == "-y" || a == "--undo"))
      (a == "--dry-run" ? inv.dry_run : a == "--undo" ? inv.undo : inv.yes) = true;
    else if (inv.verb == "setup" && (a == "--gpu" || a == "--mode" || a == "--connect" || a.rfind("--gpu=", 0) == 0 ||
                                     a.rfind("--mode=", 0) == 0 || a.rfind("--connect=", 0) == 0)) {
      std::string name = a.substr(0, a.find('='));
      std::string value = a.find('=') != std::string::npos ? a.substr(a.find('=') + 1) : i + 1 < argv.size() ? argv[++i] : "";
      if (value.empty()) {
        inv.error = name + " needs a value";
        return inv;
      }
      (name == "--gpu" ? inv.gpu : name == "--mode" ? inv.mode : inv.connect) = value;
    }
    else if (inv.verb == "log" && a == "--follow") inv.follow = true;
    else if (inv.verb == "log" && (a == "--events" || a.rfind("--events=", 0) == 0)) {
      std::string value = a.find('=') != std::string::npos ? a.substr(a.find('=') + 1) : i + 1 < argv.size() ? argv[++i] : "";
      if (value.empty() || value.size() > 6 || value.find_first_not_of("0123456789") != std::string::npos) {
        inv.error = "--events needs a number of events (0 for all), not '" + value + "'";
        return inv;
      }
      inv.events = std::stoi(value);
    }
    else if (inv.verb != "hook" && a.rfind("--", 0) == 0) {
      inv.error = "unknown option " + a + " for " + inv.verb;
      return inv;
    } else rest.push_back(a);
  }
  if (inv.help) {
    inv.kind = Invocation::Kind::verb;
    return inv;
  }
  if (rest.size() < spec->min_args || rest.size() > spec->max_args) {
    inv.error = std::string("usage: gpuhook ") + spec->synopsis;
    return inv;
  }
  if (inv.verb == "restore" && rest.empty() && !inv.all_modules) {
    inv.error = std::string("usage: gpuhook ") + spec->synopsis;
    return inv;
  }
  if (inv.verb == "hook") {
    inv.kind = Invocation::Kind::hook;
    inv.vm = rest[0];
    inv.op = rest[1];
    inv.sub = rest[2];
    inv.extra = rest.size() > 3 ? rest[3] : "-";
    return inv;
  }
  if (inv.verb == "setup" && inv.undo && (!inv.gpu.empty() || !inv.mode.empty() || inv.dry_run)) {
    inv.error = "setup --undo takes only --yes and --connect";
    return inv;
  }
  inv.kind = Invocation::Kind::verb;
  inv.args = rest;
  return inv;
}

}  // namespace gpuhook
