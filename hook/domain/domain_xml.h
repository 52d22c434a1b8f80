// The parts of a libvirt domain XML gpuhook needs: the PCI hostdevs (with managed=), and for
// `check` the firmware, machine type and the QEMU sub-vendor override. pugixml behind it.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "host/error.h"

namespace gpuhook {

struct DomainHostdev {
  std::string address;  // "0000:01:00.0"
  bool managed = false;
  // The alias libvirt gives it when the domain starts: a user alias (<alias name='ua-...'/>) is
  // kept; otherwise "hostdevN", numbered in order over hostdev interfaces, then <hostdev>s.
  std::string alias;
  // <rom file='...' bar='on|off'/>: "" when the hostdev has no such attribute.
  std::string rom_file, rom_bar;
  int line = 0;  // line of the <hostdev> in the document (1-based), 0 unknown
};

// A QEMU device property set through the qemu namespace, e.g. x-pci-sub-vendor-id=5464 for
// alias hostdev0; form is "override" (<qemu:override>) or "commandline" (-set device.A.P=V).
struct QemuProp {
  std::string alias, name, value, form;
};

struct DomainInfo {
  std::string name;
  std::string type;                    // "kvm", "qemu"
  std::vector<DomainHostdev> hostdevs; // type='pci' subsystem hostdevs
  std::string machine;                 // "pc-q35-7.2"
  bool uefi = false;                   // firmware='efi' or an OVMF/edk2 loader
  // Device properties set through the qemu namespace (override or commandline -set), as found.
  std::vector<QemuProp> qemu_props;
  bool has_qemu_namespace = false;
};

// Parses the XML; hostdevs whose address is malformed are skipped. A document that cannot be read
// gives an Error whose `why` names the line and column ("line 3, column 1: ...").
Result<DomainInfo> parse_domain_xml(std::string_view xml);

}  // namespace gpuhook
