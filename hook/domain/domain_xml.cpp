#include "domain/domain_xml.h"

#include <pugixml.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace gpuhook {
namespace {

// "0x01" or "1" -> value, bounded.
std::string trim_copy(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

bool num(const char* s, unsigned max, unsigned& out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  unsigned long v = std::strtoul(s, &end, 0);
  if (*end || v > max) return false;
  out = static_cast<unsigned>(v);
  return true;
}

// QEMU's size suffixes for -object ...,size=64M: none (bytes), K, M, G, T (powers of 1024).
long long qemu_size(const std::string& v) {
  if (v.empty()) return -1;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  std::string suf = end;
  unsigned long long mul = suf.empty() ? 1 : suf == "K" || suf == "k" ? 1ull << 10 : suf == "M" ? 1ull << 20
                         : suf == "G" ? 1ull << 30 : suf == "T" ? 1ull << 40 : 0;
  if (!mul || end == v.c_str() || n > (1ull << 50) / mul) return -1;
  return static_cast<long long>(n * mul);
}

// 1-based line and column of a byte offset.
std::pair<int, int> line_col(std::string_view s, size_t off) {
  int line = 1, col = 1;
  for (size_t i = 0; i < off && i < s.size(); ++i) {
    if (s[i] == '\n') ++line, col = 1;
    else ++col;
  }
  return {line, col};
}

}  // namespace

long long libvirt_size_bytes(const std::string& value, const std::string& unit_in, const std::string& def) {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 18) return -1;
  unsigned long long n = std::strtoull(value.c_str(), nullptr, 10);
  std::string u = unit_in.empty() ? def : unit_in;
  unsigned long long mul = 0;
  if (u == "b" || u == "bytes") mul = 1;
  else if (u == "KB") mul = 1000;
  else if (u == "k" || u == "K" || u == "KiB") mul = 1ull << 10;
  else if (u == "MB") mul = 1000ull * 1000;
  else if (u == "M" || u == "MiB") mul = 1ull << 20;
  else if (u == "GB") mul = 1000ull * 1000 * 1000;
  else if (u == "G" || u == "GiB") mul = 1ull << 30;
  else if (u == "TB") mul = 1000ull * 1000 * 1000 * 1000;
  else if (u == "T" || u == "TiB") mul = 1ull << 40;
  if (!mul || n > (1ull << 52) / mul) return -1;
  return static_cast<long long>(n * mul);
}

Result<DomainInfo> parse_domain_xml(std::string_view xml) {
  pugi::xml_document doc;
  auto r = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) {
    Error e;
    e.what = "cannot read the domain XML";
    size_t off = static_cast<size_t>(r.offset) < xml.size() ? static_cast<size_t>(r.offset) : xml.size();
    auto lc = line_col(xml, off);
    e.why = "line " + std::to_string(lc.first) + ", column " + std::to_string(lc.second) + ": " + r.description();
    e.id = "domain-xml-invalid";
    return e;
  }
  pugi::xml_node dom = doc.child("domain");
  if (!dom) {
    Error e;
    e.what = "cannot read the domain XML";
    e.why = "no <domain> element";
    return e;
  }
  DomainInfo d;
  d.name = dom.child_value("name");
  d.type = dom.attribute("type").value();
  for (auto a : dom.attributes())
    if (std::string_view(a.name()).rfind("xmlns:", 0) == 0 && std::string_view(a.value()).find("libvirt.org/schemas/domain/qemu") != std::string_view::npos)
      d.has_qemu_namespace = true;
  pugi::xml_node os = dom.child("os");
  d.machine = os.child("type").attribute("machine").value();
  std::string fw = os.attribute("firmware").value();
  std::string loader = os.child_value("loader");
  d.uefi = fw == "efi" || loader.find("OVMF") != std::string::npos || loader.find("edk2") != std::string::npos ||
           std::string(os.child("loader").attribute("type").value()) == "pflash";
  // libvirt's alias numbering: hostdev interfaces first, then every <hostdev>; user aliases
  // (ua-...) are kept and take no number.
  auto user_alias = [](const pugi::xml_node& n) {
    std::string a = n.child("alias").attribute("name").value();
    return a.rfind("ua-", 0) == 0 ? a : std::string();
  };
  int next = 0;
  for (auto i : dom.child("devices").children("interface"))
    if (std::string_view(i.attribute("type").value()) == "hostdev" && user_alias(i).empty()) ++next;
  for (auto hd : dom.child("devices").children("hostdev")) {
    std::string alias = user_alias(hd);
    if (alias.empty()) alias = "hostdev" + std::to_string(next++);
    if (std::string_view(hd.attribute("type").value()) != "pci") continue;
    auto a = hd.child("source").child("address");
    unsigned dm = 0, b = 0, s = 0, f = 0;
    const char* dstr = a.attribute("domain").value();
    if (!*dstr) dstr = "0";
    if (!num(dstr, 0xffff, dm) || !num(a.attribute("bus").value(), 0xff, b) || !num(a.attribute("slot").value(), 0x1f, s) ||
        !num(a.attribute("function").value(), 7, f))
      continue;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", dm, b, s, f);
    DomainHostdev h;
    h.address = buf;
    std::string_view m = hd.attribute("managed").value();
    h.managed = (m == "yes");
    h.alias = alias;
    h.rom_file = hd.child("rom").attribute("file").value();
    h.rom_bar = hd.child("rom").attribute("bar").value();
    h.line = line_col(xml, static_cast<size_t>(hd.offset_debug() < 0 ? 0 : hd.offset_debug())).first;
    d.hostdevs.push_back(h);
  }
  for (auto sh : dom.child("devices").children("shmem")) {
    DomainShmem m;
    m.name = sh.attribute("name").value();
    m.model = sh.child("model").attribute("type").value();
    if (auto sz = sh.child("size"))
      m.size_bytes = libvirt_size_bytes(trim_copy(sz.child_value()), sz.attribute("unit").value(), "b");
    d.shmems.push_back(m);
  }
  for (const char* tag : {"memory", "currentMemory"}) {
    auto m = dom.child(tag);
    if (!m || d.memory_kib > 0) continue;
    long long b = libvirt_size_bytes(trim_copy(m.child_value()), m.attribute("unit").value(), "KiB");
    if (b > 0) d.memory_kib = b / 1024;
  }
  if (auto hp = dom.child("memoryBacking").child("hugepages")) {
    d.hugepages = true;
    for (auto pg : hp.children("page")) {
      long long b = libvirt_size_bytes(pg.attribute("size").value(), pg.attribute("unit").value(), "KiB");
      d.hugepage_sizes.push_back({b > 0 ? b / 1024 : -1, pg.attribute("nodeset").value()});
    }
  }
  d.numatune_nodeset = dom.child("numatune").child("memory").attribute("nodeset").value();
  for (auto pin : dom.child("cputune").children()) {
    std::string_view nm = pin.name();
    if (nm == "vcpupin" || nm == "emulatorpin" || nm == "iothreadpin") d.cpu_pins.push_back(pin.attribute("cpuset").value());
  }
  // <qemu:override><qemu:device alias='hostdev0'><qemu:frontend><qemu:property name=... value=.../>
  // <qemu:commandline><qemu:arg value='-set'/><qemu:arg value='device.hostdev0.x-pci-sub-vendor-id=5464'/>
  for (pugi::xml_node n : dom.children()) {
    std::string_view nm = n.name();
    if (nm.size() > 9 && nm.substr(nm.size() - 9) == ":override") {
      for (auto dev : n.children())
        for (auto fe : dev.children())
          for (auto p : fe.children())
            d.qemu_props.push_back({dev.attribute("alias").value(), p.attribute("name").value(),
                                    p.attribute("value").value(), "override"});
    }
    if (nm.size() > 12 && nm.substr(nm.size() - 12) == ":commandline") {
      std::vector<std::string> args;
      for (auto arg : n.children()) args.push_back(arg.attribute("value").value());
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] != "-set") continue;
        const std::string& v = args[i + 1];  // device.<alias>.<property>=<value>
        auto eq = v.find('=');
        if (v.rfind("device.", 0) != 0 || eq == std::string::npos) continue;
        auto dot = v.rfind('.', eq);
        if (dot == std::string::npos || dot < 7) continue;
        d.qemu_props.push_back({v.substr(7, dot - 7), v.substr(dot + 1, eq - dot - 1), v.substr(eq + 1), "commandline"});
      }
      // Looking Glass's kvmfr: -object memory-backend-file,id=...,mem-path=/dev/kvmfr0,size=32M,share=yes
      for (const auto& a : args) {
        if (a.find("memory-backend-file") == std::string::npos) continue;
        std::string path, size;
        size_t pos = 0;
        while (pos <= a.size()) {
          size_t c = a.find(',', pos);
          std::string kv = a.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
          if (kv.rfind("mem-path=", 0) == 0) path = kv.substr(9);
          if (kv.rfind("size=", 0) == 0) size = kv.substr(5);
          if (c == std::string::npos) break;
          pos = c + 1;
        }
        if (path.rfind("/dev/kvmfr", 0) == 0) {
          d.kvmfr_device = path;
          d.kvmfr_size = qemu_size(size);
        }
      }
    }
  }
  return d;
}

double machine_version(const std::string& m) {
  auto dash = m.rfind('-');
  if (dash == std::string::npos) return -1;
  std::string v = m.substr(dash + 1);
  if (v.empty() || v.find_first_not_of("0123456789.") != std::string::npos) return -1;
  return std::strtod(v.c_str(), nullptr);
}

unsigned long parse_id(const std::string& v) {
  char* end = nullptr;
  unsigned long r = std::strtoul(v.c_str(), &end, 0);
  return (end && *end == '\0' && !v.empty()) ? r : 0xffffffffUL;
}

}  // namespace gpuhook
