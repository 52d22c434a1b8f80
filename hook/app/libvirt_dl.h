// libvirt's API, loaded at run time (dlopen) and only by the CLI verbs that need it, so the hook
// path never pays for loading libvirt.so and its ~57 libraries. Read-only connections only.
#pragma once
#include <memory>
#include <string>

#include "host/error.h"

namespace gpuhook {

// The inactive-or-live XML of a defined domain (virDomainGetXMLDesc with VIR_DOMAIN_XML_INACTIVE),
// through a read-only connection to `uri` ("" = libvirt's default, qemu:///system as root).
Result<std::string> libvirt_domain_xml(const std::string& uri, const std::string& vm);

// For `gpuhook setup`, through a read-write connection: the domain's inactive XML with its secrets
// (VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE: what a redefinition must keep), and defining a
// domain from XML (virDomainDefineXML). Never from inside a hook: libvirtd waits for the hook.
class DomainStore {
 public:
  virtual ~DomainStore() = default;
  virtual Result<std::string> xml(const std::string& vm) = 0;
  virtual Status define(const std::string& xml) = 0;
};
std::unique_ptr<DomainStore> libvirt_store(const std::string& uri);

}  // namespace gpuhook
