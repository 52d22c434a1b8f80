// Fuzz target: the domain XML reader (pugixml behind it). libvirtd sends the domain XML on stdin;
// a hostdev gpuhook takes from it is always a well-formed PCI address.
#include <cstdint>
#include <string_view>

#include "domain/domain_xml.h"
#include "sysinfo/pci.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpuhook;
  auto d = parse_domain_xml(std::string_view(reinterpret_cast<const char*>(data), size));
  if (d) {
    for (const auto& h : d->hostdevs) {
      auto a = PciAddress::parse(h.address);
      if (!a || a->str() != h.address) __builtin_trap();
    }
  } else if (d.error().what.empty()) {
    __builtin_trap();  // a rejection always says why
  }
  return 0;
}
