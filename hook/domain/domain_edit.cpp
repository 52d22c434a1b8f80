#include "domain/domain_edit.h"

#include <pugixml.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "domain/domain_xml.h"

namespace gpuhook {
namespace {

const char* kQemuNs = "http://libvirt.org/schemas/domain/qemu/1.0";

struct Splice {
  size_t pos, erase;
  std::string text;
};

std::string apply(std::string s, std::vector<Splice> v) {
  std::sort(v.begin(), v.end(), [](const Splice& a, const Splice& b) { return a.pos > b.pos; });
  for (const auto& x : v) s.replace(x.pos, x.erase, x.text);
  return s;
}

bool num(const char* s, unsigned max, unsigned& out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  unsigned long v = std::strtoul(s, &end, 0);
  if (*end || v > max) return false;
  out = static_cast<unsigned>(v);
  return true;
}

std::string address_of(const pugi::xml_node& hd) {
  auto a = hd.child("source").child("address");
  unsigned dm = 0, b = 0, s = 0, f = 0;
  const char* dstr = a.attribute("domain").value();
  if (!*dstr) dstr = "0";
  if (!num(dstr, 0xffff, dm) || !num(a.attribute("bus").value(), 0xff, b) || !num(a.attribute("slot").value(), 0x1f, s) ||
      !num(a.attribute("function").value(), 7, f))
    return "";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", dm, b, s, f);
  return buf;
}

// The '<' of an element's start tag, from pugixml's offset of its name.
size_t tag_start(std::string_view xml, const pugi::xml_node& n) {
  ptrdiff_t off = n.offset_debug();
  if (off < 0) return std::string_view::npos;
  return xml.rfind('<', static_cast<size_t>(off));
}

// The whitespace that indents the line `pos` is on, when only whitespace precedes it there.
std::string indent_before(std::string_view xml, size_t pos) {
  size_t nl = xml.rfind('\n', pos == 0 ? 0 : pos - 1);
  size_t b = nl == std::string_view::npos ? 0 : nl + 1;
  std::string_view w = xml.substr(b, pos - b);
  return w.find_first_not_of(" \t") == std::string_view::npos ? std::string(w) : std::string();
}

// Lines (relative indentation included) inserted before a closing tag at `pos`, indented one
// level deeper than that tag.
Splice block_before(std::string_view xml, size_t pos, const std::vector<std::string>& lines) {
  std::string indent = indent_before(xml, pos);
  bool own_line = pos > 0 && (xml[pos - 1] == '\n' || !indent.empty());
  std::string ci = indent + "  ";
  std::string ins = own_line ? "" : "\n";
  for (size_t i = 0; i < lines.size(); ++i) ins += (i == 0 && own_line ? std::string("  ") : ci) + lines[i] + "\n";
  ins += indent;
  return {pos, 0, ins};
}


}  // namespace

Result<DomainEdit> edit_domain_once(std::string_view xml, const DomainEditSpec& spec) {
  auto fail = [](std::string why) {
    Error e;
    e.what = "cannot edit the domain XML";
    e.why = std::move(why);
    return e;
  };
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8)) {
    auto p = parse_domain_xml(xml);
    return p ? fail("it does not parse") : p.error();
  }
  pugi::xml_node dom = doc.child("domain");
  pugi::xml_node devices = dom.child("devices");
  if (!dom || !devices) return fail("it has no <domain> with <devices>");
  DomainEdit out;
  std::vector<Splice> edits;
  std::set<std::string> present;
  for (auto hd : devices.children("hostdev")) {
    if (std::string_view(hd.attribute("type").value()) != "pci") continue;
    std::string a = address_of(hd);
    if (a.empty() || std::find(spec.functions.begin(), spec.functions.end(), a) == spec.functions.end()) continue;
    present.insert(a);
    if (std::string_view(hd.attribute("managed").value()) != "yes") continue;  // absent means 'no' to libvirt
    size_t lt = tag_start(xml, hd);
    size_t gt = lt == std::string_view::npos ? lt : xml.find('>', lt);
    if (gt == std::string_view::npos) return fail("cannot locate the <hostdev> of " + a);
    std::string_view tag = xml.substr(lt, gt - lt);
    size_t m = tag.find("managed");
    while (m != std::string_view::npos && m > 0 && tag[m - 1] != ' ' && tag[m - 1] != '\t' && tag[m - 1] != '\n')
      m = tag.find("managed", m + 1);
    size_t q = m == std::string_view::npos ? m : tag.find_first_of("'\"", m);
    size_t q2 = q == std::string_view::npos ? q : tag.find(tag[q], q + 1);
    if (q2 == std::string_view::npos) return fail("cannot locate managed= of the <hostdev> of " + a);
    edits.push_back({lt + q + 1, q2 - q - 1, "no"});
    out.changes.push_back("hostdev " + a + ": managed='yes' -> managed='no' (gpuhook binds it; libvirt leaves it alone)");
  }
  std::vector<std::string> lines;
  for (const auto& a : spec.functions) {
    if (present.count(a)) continue;
    lines.push_back("<hostdev mode='subsystem' type='pci' managed='no'>");
    lines.push_back("  <source>");
    lines.push_back("    <address domain='0x" + a.substr(0, 4) + "' bus='0x" + a.substr(5, 2) + "' slot='0x" + a.substr(8, 2) +
                    "' function='0x" + a.substr(11, 1) + "'/>");
    lines.push_back("  </source>");
    lines.push_back("</hostdev>");
    out.changes.push_back("hostdev " + a + ": added, managed='no'" + (a == spec.gpu ? " (the GPU)" : " (a function of the card)"));
  }
  if (!lines.empty()) {
    size_t close = xml.rfind("</devices>");
    if (close == std::string_view::npos) return fail("its <devices> element has no closing tag");
    edits.push_back(block_before(xml, close, lines));
  }
  std::string text = apply(std::string(xml), edits);

  auto info = parse_domain_xml(text);
  if (!info) return info.error();
  if (spec.subsystem) {
    std::string alias;
    for (const auto& h : info->hostdevs)
      if (h.address == spec.gpu) alias = h.alias;
    auto has = [&](const char* name, unsigned v) {
      return std::any_of(info->qemu_props.begin(), info->qemu_props.end(), [&](const QemuProp& p) {
        return p.alias == alias && p.name == name && parse_id(p.value) == v;
      });
    };
    if (!alias.empty() && !(has("x-pci-sub-vendor-id", spec.sub_vendor) && has("x-pci-sub-device-id", spec.sub_device))) {
      pugi::xml_document d2;
      d2.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
      pugi::xml_node dm = d2.child("domain");
      std::string prefix;
      for (auto a : dm.attributes())
        if (std::string_view(a.name()).rfind("xmlns:", 0) == 0 && std::string_view(a.value()) == kQemuNs)
          prefix = std::string(a.name()).substr(6);
      std::vector<Splice> e2;
      if (prefix.empty()) {
        prefix = "qemu";
        size_t lt = tag_start(text, dm);
        if (lt == std::string::npos) return fail("cannot locate <domain>");
        e2.push_back({lt + 7, 0, std::string(" xmlns:qemu='") + kQemuNs + "'"});
        out.changes.push_back("domain: the qemu namespace (xmlns:qemu) added");
      }
      std::string v = std::to_string(spec.sub_vendor), dv = std::to_string(spec.sub_device);
      bool commandline = [&] { double ver = machine_version(info->machine); return ver >= 0 && ver < 7.0; }();
      std::string P = prefix + ":";
      if (!commandline) {
        std::vector<std::string> dev = {"<" + P + "device alias='" + alias + "'>", "  <" + P + "frontend>",
                                        "    <" + P + "property name='x-pci-sub-vendor-id' type='unsigned' value='" + v + "'/>",
                                        "    <" + P + "property name='x-pci-sub-device-id' type='unsigned' value='" + dv + "'/>",
                                        "  </" + P + "frontend>", "</" + P + "device>"};
        size_t close = text.rfind("</" + P + "override>");
        if (close != std::string::npos) {
          e2.push_back(block_before(text, close, dev));
        } else {
          std::vector<std::string> all = {"<" + P + "override>"};
          for (auto& l : dev) all.push_back("  " + l);
          all.push_back("</" + P + "override>");
          size_t end = text.rfind("</domain>");
          if (end == std::string::npos) return fail("no closing </domain>");
          e2.push_back(block_before(text, end, all));
        }
        out.changes.push_back("domain: qemu:override sets x-pci-sub-vendor-id=" + v + " and x-pci-sub-device-id=" + dv +
                              " on alias " + alias + " (the GPU's hostdev " + spec.gpu + ")");
      } else {
        std::vector<std::string> args = {"<" + P + "arg value='-set'/>", "<" + P + "arg value='device." + alias + ".x-pci-sub-vendor-id=" + v + "'/>",
                                         "<" + P + "arg value='-set'/>", "<" + P + "arg value='device." + alias + ".x-pci-sub-device-id=" + dv + "'/>"};
        size_t close = text.rfind("</" + P + "commandline>");
        if (close != std::string::npos) {
          e2.push_back(block_before(text, close, args));
        } else {
          std::vector<std::string> all = {"<" + P + "commandline>"};
          for (auto& l : args) all.push_back("  " + l);
          all.push_back("</" + P + "commandline>");
          size_t end = text.rfind("</domain>");
          if (end == std::string::npos) return fail("no closing </domain>");
          e2.push_back(block_before(text, end, all));
        }
        out.changes.push_back("domain: qemu:commandline -set device." + alias + ".x-pci-sub-vendor-id=" + v + " and ...sub-device-id=" + dv +
                              " (machine " + info->machine + " is older than QEMU 7.0)");
      }
      text = apply(text, e2);
    }
  }
  if (!info->uefi)
    out.notes.push_back("the domain boots with legacy BIOS (SeaBIOS); setup does not change the firmware: an installed guest "
                        "would not boot any more. For UEFI, create the VM anew with OVMF (virt-install --boot uefi; "
                        "virt-manager: Firmware UEFI, before installing)");
  if (info->machine != "q35" && info->machine.rfind("pc-q35-", 0) != 0)
    out.notes.push_back("the machine type is '" + (info->machine.empty() ? std::string("?") : info->machine) +
                        "', not q35; setup does not change it (the guest would see new hardware and may not boot). "
                        "For q35, create the VM anew with --machine q35 (virt-manager: Chipset Q35)");
  out.xml = text;
  return out;
}

// The edit, checked before anyone defines it: the result must read back with every function of
// the card as a managed='no' hostdev, and a second edit must change nothing. A document the text
// splices get wrong (found by fuzz_domain_xml: a domain with two <name> elements) is refused
// with why, never handed to libvirt half right.
Result<DomainEdit> edit_domain_for_card(std::string_view xml, const DomainEditSpec& spec) {
  auto e = edit_domain_once(xml, spec);
  if (!e) return e;
  auto refuse = [&](const std::string& why) -> Result<DomainEdit> {
    Error err;
    err.what = "setup cannot edit this domain XML safely";
    err.why = why;
    err.hint = "add the card's <hostdev type='pci' managed='no'> entries by hand (virsh edit; README: Setting up a "
               "VM, the manual path), then run `gpuhook check`";
    err.id = "domain-edit-unsafe";
    return err;
  };
  auto back = parse_domain_xml(e->xml);
  if (!back) return refuse("the edited document does not read back: " + back.error().message());
  for (const auto& f : spec.functions) {
    bool ok = false;
    for (const auto& h : back->hostdevs) ok |= h.address == f && !h.managed;
    if (!ok) return refuse("after the edit " + f + " is not a managed='no' hostdev");
  }
  auto again = edit_domain_once(e->xml, spec);
  if (!again || again->changed() || again->xml != e->xml) return refuse("a second edit would change it again");
  return e;
}

}  // namespace gpuhook
