#include "app/libvirt_dl.h"

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

namespace gpuhook {

namespace {
struct Api {
  void* so = nullptr;
  decltype(&virConnectOpenReadOnly) open = nullptr;
  decltype(&virConnectClose) close = nullptr;
  decltype(&virDomainLookupByName) lookup = nullptr;
  decltype(&virDomainGetXMLDesc) xml = nullptr;
  decltype(&virDomainFree) free_dom = nullptr;
  decltype(&virGetLastErrorMessage) last_error = nullptr;
  decltype(&virSetErrorFunc) set_error_func = nullptr;
  decltype(&virConnectOpen) open_rw = nullptr;
  decltype(&virDomainDefineXML) define = nullptr;
};

void quiet(void*, virErrorPtr) {}  // libvirt prints errors on stderr by default; we report them

Result<Api> load() {
  Api a;
  a.so = ::dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!a.so) {
    Error e;
    e.what = "cannot load libvirt";
    e.why = ::dlerror();
    e.hint = "install libvirt (Debian: libvirt0, Fedora: libvirt-libs, Arch: libvirt)";
    return e;
  }
  a.open = reinterpret_cast<decltype(a.open)>(::dlsym(a.so, "virConnectOpenReadOnly"));
  a.close = reinterpret_cast<decltype(a.close)>(::dlsym(a.so, "virConnectClose"));
  a.lookup = reinterpret_cast<decltype(a.lookup)>(::dlsym(a.so, "virDomainLookupByName"));
  a.xml = reinterpret_cast<decltype(a.xml)>(::dlsym(a.so, "virDomainGetXMLDesc"));
  a.free_dom = reinterpret_cast<decltype(a.free_dom)>(::dlsym(a.so, "virDomainFree"));
  a.last_error = reinterpret_cast<decltype(a.last_error)>(::dlsym(a.so, "virGetLastErrorMessage"));
  a.set_error_func = reinterpret_cast<decltype(a.set_error_func)>(::dlsym(a.so, "virSetErrorFunc"));
  a.open_rw = reinterpret_cast<decltype(a.open_rw)>(::dlsym(a.so, "virConnectOpen"));
  a.define = reinterpret_cast<decltype(a.define)>(::dlsym(a.so, "virDomainDefineXML"));
  if (!a.open || !a.close || !a.lookup || !a.xml || !a.free_dom || !a.last_error || !a.set_error_func || !a.open_rw || !a.define) {
    Error e;
    e.what = "the libvirt library found lacks functions gpuhook needs";
    e.hint = "install libvirt 6.5 or newer";
    return e;
  }
  a.set_error_func(nullptr, quiet);
  return a;
}
}  // namespace

Result<std::string> libvirt_domain_xml(const std::string& uri, const std::string& vm) {
  auto api = load();
  if (!api) return api.error();
  Api& a = *api;
  virConnectPtr c = a.open(uri.empty() ? nullptr : uri.c_str());
  if (!c) {
    Error e;
    e.what = "cannot connect to libvirt" + (uri.empty() ? std::string() : " at " + uri);
    e.why = a.last_error();
    e.hint = "is libvirtd (or virtqemud) running? systemctl status libvirtd";
    return e;
  }
  virDomainPtr d = a.lookup(c, vm.c_str());
  if (!d) {
    Error e;
    e.what = "libvirt has no domain named " + vm;
    e.why = a.last_error();
    e.hint = "virsh list --all shows the defined domains";
    a.close(c);
    return e;
  }
  char* x = a.xml(d, VIR_DOMAIN_XML_INACTIVE);
  std::string out = x ? x : "";
  ::free(x);
  a.free_dom(d);
  a.close(c);
  if (out.empty()) {
    Error e;
    e.what = "libvirt returned no XML for " + vm;
    return e;
  }
  return out;
}

namespace {

class LibvirtStore : public DomainStore {
 public:
  explicit LibvirtStore(std::string uri) : uri_(std::move(uri)) {}
  ~LibvirtStore() override {
    if (conn_) api_.close(conn_);
  }
  Result<std::string> xml(const std::string& vm) override {
    if (auto s = connect(); !s) return s.error();
    virDomainPtr d = api_.lookup(conn_, vm.c_str());
    if (!d) {
      Error e;
      e.what = "libvirt has no domain named " + vm;
      e.why = api_.last_error();
      e.hint = "virsh list --all shows the defined domains; create the VM first (virt-manager or virt-install)";
      return e;
    }
    char* x = api_.xml(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    std::string out = x ? x : "";
    ::free(x);
    api_.free_dom(d);
    if (out.empty()) {
      Error e;
      e.what = "libvirt returned no XML for " + vm;
      e.why = api_.last_error();
      return e;
    }
    return out;
  }
  Status define(const std::string& xml) override {
    if (auto s = connect(); !s) return s;
    virDomainPtr d = api_.define(conn_, xml.c_str());
    if (!d) {
      Error e;
      e.what = "libvirt refused the domain definition";
      e.why = api_.last_error();
      e.hint = "nothing was changed in the domain; the diff above shows what setup tried";
      return e;
    }
    api_.free_dom(d);
    return Status::success();
  }

 private:
  Status connect() {
    if (conn_) return Status::success();
    auto a = load();
    if (!a) return a.error();
    api_ = *a;
    conn_ = api_.open_rw(uri_.empty() ? nullptr : uri_.c_str());
    if (!conn_) {
      Error e;
      e.what = "cannot connect to libvirt" + (uri_.empty() ? std::string() : " at " + uri_);
      e.why = api_.last_error();
      e.hint = "setup changes the domain: run it as root (or a user libvirt lets manage domains); is libvirtd running?";
      return e;
    }
    return Status::success();
  }
  std::string uri_;
  Api api_;
  virConnectPtr conn_ = nullptr;
};

}  // namespace

std::unique_ptr<DomainStore> libvirt_store(const std::string& uri) { return std::make_unique<LibvirtStore>(uri); }

}  // namespace gpuhook
