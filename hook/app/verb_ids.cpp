// gpuhook ids ADDRESS: a device's ids in hex and decimal, and the domain XML that gives the VM the
// device's subsystem ids (QEMU's x-pci-sub-vendor-id / x-pci-sub-device-id properties of
// vfio-pci): <qemu:override> for QEMU 7.0 and later, <qemu:commandline> -set for older ones.
#include <string>

#include "app/verbs.h"
#include "sysinfo/pci.h"

namespace gpuhook {
namespace {

const char* kQemuNs = "http://libvirt.org/schemas/domain/qemu/1.0";
const char* kAlias = "hostdev0";

unsigned long decimal(const std::string& hex) { return std::stoul(hex, nullptr, 16); }

// An id as sysfs gave it, or "" when it is not 1-4 hex digits (missing or damaged attribute).
std::string valid(const std::string& hex) {
  bool ok = !hex.empty() && hex.size() <= 4 && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
  return ok ? hex : "";
}

std::string json_id(const std::string& hex) {
  if (hex.empty()) return "null";
  return "{\"hex\":" + json_str(hex) + ",\"decimal\":" + std::to_string(decimal(hex)) + "}";
}

std::string override_xml(const std::string& sv, const std::string& sd) {
  return std::string("  <qemu:override>\n") + "    <qemu:device alias='" + kAlias + "'>\n" +
         "      <qemu:frontend>\n" +
         "        <qemu:property name='x-pci-sub-vendor-id' type='unsigned' value='" + std::to_string(decimal(sv)) + "'/>\n" +
         "        <qemu:property name='x-pci-sub-device-id' type='unsigned' value='" + std::to_string(decimal(sd)) + "'/>\n" +
         "      </qemu:frontend>\n" + "    </qemu:device>\n" + "  </qemu:override>\n";
}

std::string commandline_xml(const std::string& sv, const std::string& sd) {
  return std::string("  <qemu:commandline>\n") + "    <qemu:arg value='-set'/>\n" + "    <qemu:arg value='device." +
         kAlias + ".x-pci-sub-vendor-id=" + std::to_string(decimal(sv)) + "'/>\n" + "    <qemu:arg value='-set'/>\n" +
         "    <qemu:arg value='device." + kAlias + ".x-pci-sub-device-id=" + std::to_string(decimal(sd)) + "'/>\n" +
         "  </qemu:commandline>\n";
}

std::string row(const std::string& label, const std::string& hex) {
  std::string l = "  " + label;
  l.resize(20, ' ');
  if (hex.empty()) return l + "unknown (sysfs has no such attribute)\n";
  std::string h = hex;
  h.resize(7, ' ');
  return l + h + std::to_string(decimal(hex)) + "\n";
}

}  // namespace

int verb_ids(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  auto addr = PciAddress::parse(inv.args[0]);
  if (!addr) {
    err << "gpuhook: ids: '" << inv.args[0] << "' is not a PCI address (DDDD:BB:SS.F or BB:SS.F, e.g. 0000:01:00.0)\n";
    return 2;
  }
  PciSysfs pci(app.host.fs);
  auto d = pci.device(addr->str());
  if (!d) {
    err << "gpuhook: ids: no PCI device " << addr->str() << " (no " << pci.device_path(addr->str()) << ")\n"
        << "  `gpuhook doctor` lists the display devices, `gpuhook groups` every device\n";
    return 1;
  }
  d->vendor = valid(d->vendor);
  d->device = valid(d->device);
  d->subsystem_vendor = valid(d->subsystem_vendor);
  d->subsystem_device = valid(d->subsystem_device);
  bool have_sub = !d->subsystem_vendor.empty() && !d->subsystem_device.empty();
  if (inv.json) {
    out << "{\"address\":" << json_str(d->address) << ",\"class\":" << json_str(d->class4())
        << ",\"driver\":" << (d->driver.empty() ? "null" : json_str(d->driver)) << ",\"vendor\":" << json_id(d->vendor)
        << ",\"device\":" << json_id(d->device) << ",\"subsystem_vendor\":" << json_id(d->subsystem_vendor)
        << ",\"subsystem_device\":" << json_id(d->subsystem_device) << ",\"xml\":";
    if (have_sub)
      out << "{\"alias\":" << json_str(kAlias) << ",\"namespace\":" << json_str(std::string("xmlns:qemu='") + kQemuNs + "'")
          << ",\"override\":" << json_str(override_xml(d->subsystem_vendor, d->subsystem_device))
          << ",\"commandline\":" << json_str(commandline_xml(d->subsystem_vendor, d->subsystem_device)) << "}";
    else
      out << "null";
    out << "}\n";
    return have_sub ? 0 : 1;
  }
  out << d->address << " " << d->class_name() << " [" << d->class4() << "]"
      << (d->driver.empty() ? ", no driver" : ", driver " + d->driver) << "\n"
      << "                    hex    decimal\n"
      << row("vendor", d->vendor) << row("device", d->device) << row("subsystem vendor", d->subsystem_vendor)
      << row("subsystem device", d->subsystem_device);
  if (!have_sub) {
    out << "\nThe subsystem ids are unknown, so there is no XML to give the VM them.\n";
    return 1;
  }
  out << "\nDomain XML (virsh edit <vm>) that gives the VM these subsystem ids. '" << kAlias
      << "' is the alias of the device's\n<hostdev>: libvirt names them hostdev0, hostdev1, ... in document order; "
         "or give the <hostdev>\nits own <alias name='ua-gpu'/> and use 'ua-gpu'.\n\n"
      << "1. The namespace, as an attribute of the <domain> element:\n"
      << "<domain type='kvm' xmlns:qemu='" << kQemuNs << "'>\n\n"
      << "2. QEMU 7.0 and later: inside <domain>, after </devices>:\n"
      << override_xml(d->subsystem_vendor, d->subsystem_device) << "\n"
      << "   or, for older QEMU, the command-line form instead:\n"
      << commandline_xml(d->subsystem_vendor, d->subsystem_device)
      << "\n`gpuhook check <vm>` verifies the domain has it.\n";
  return 0;
}

}  // namespace gpuhook
