// libvirt's API, loaded at run time (dlopen) and only by the CLI verbs that need it, so the hook
// path never pays for loading libvirt.so and its ~57 libraries. Read-only connections only.
#pragma once
#include <string>

#include "host/error.h"

namespace gpuhook {

// The inactive-or-live XML of a defined domain (virDomainGetXMLDesc with VIR_DOMAIN_XML_INACTIVE),
// through a read-only connection to `uri` ("" = libvirt's default, qemu:///system as root).
Result<std::string> libvirt_domain_xml(const std::string& uri, const std::string& vm);

}  // namespace gpuhook
