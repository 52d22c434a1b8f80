// Edits a libvirt domain XML for `gpuhook setup`, as text: every change is an insertion or a
// replacement at a place pugixml located, so the rest of the document (its quoting, comments,
// order, indentation) stays byte for byte what libvirt gave, and the diff shows only the changes.
//   - one <hostdev mode='subsystem' type='pci' managed='no'> per function of the card: a hostdev
//     of such a function with managed='yes' becomes managed='no'; missing ones are added at the end
//     of <devices>
//   - the subsystem ids (optional): the qemu namespace on <domain>, and for the alias libvirt will
//     give the GPU's hostdev x-pci-sub-vendor-id/x-pci-sub-device-id in decimal, as <qemu:override>
//     (machine types of QEMU 7.0 and later, or without a version) or <qemu:commandline> -set
// Firmware and machine type are never changed (that breaks an installed guest): only noted.
// Applying the same edit to its own result changes nothing.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "host/error.h"

namespace gpuhook {

struct DomainEditSpec {
  std::vector<std::string> functions;  // "0000:01:00.0", ...: the card's functions
  std::string gpu;                     // the GPU's display function (one of them)
  bool subsystem = false;              // set the GPU's subsystem ids in the VM
  unsigned sub_vendor = 0, sub_device = 0;
};

struct DomainEdit {
  std::string xml;                   // the edited document ("" unchanged parts included)
  std::vector<std::string> changes;  // one line per change, for people
  std::vector<std::string> notes;    // what was seen and left alone (firmware, machine type)
  bool changed() const { return !changes.empty(); }
};

Result<DomainEdit> edit_domain_for_card(std::string_view xml, const DomainEditSpec& spec);

}  // namespace gpuhook
