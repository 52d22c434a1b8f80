// Fuzz target: the domain XML reader (pugixml behind it), and setup's editor over it. libvirtd
// sends the domain XML on stdin; a hostdev gpuhook takes from it is always a well-formed PCI
// address. setup's edit of any document either fails with a reason or gives a document that
// reads back with every function of the card as a managed='no' hostdev, and editing that again
// changes nothing (setup run twice changes nothing).
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "domain/domain_edit.h"
#include "domain/domain_xml.h"
#include "sysinfo/pci.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpuhook;
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto d = parse_domain_xml(xml);
  if (d) {
    for (const auto& h : d->hostdevs) {
      auto a = PciAddress::parse(h.address);
      if (!a || a->str() != h.address) __builtin_trap();
    }
  } else if (d.error().what.empty()) {
    __builtin_trap();  // a rejection always says why
  }
  DomainEditSpec spec;
  spec.functions = {"0000:01:00.0", "0000:01:00.1"};
  spec.gpu = "0000:01:00.0";
  spec.subsystem = true;
  spec.sub_vendor = 0x1558;
  spec.sub_device = 0x8550;
  auto e = edit_domain_for_card(xml, spec);
  if (!e) {
    if (e.error().message().empty()) __builtin_trap();
    return 0;
  }
  auto back = parse_domain_xml(e->xml);
  if (!back) __builtin_trap();  // setup would define a document that does not read back
  for (const auto& f : spec.functions) {
    bool ok = std::any_of(back->hostdevs.begin(), back->hostdevs.end(),
                          [&](const DomainHostdev& h) { return h.address == f && !h.managed; });
    if (!ok) __builtin_trap();
  }
  auto again = edit_domain_for_card(e->xml, spec);
  if (!again || again->changed() || again->xml != e->xml) __builtin_trap();
  return 0;
}
