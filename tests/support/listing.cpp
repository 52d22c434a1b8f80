#include "support/listing.h"

#include <algorithm>
#include <regex>
#include <sstream>

namespace gpuhook::fixtures {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// "01:00.0 VGA compatible controller [0300]: NVIDIA ... [10de:1c20] (rev a1)" -> device, or
// nullopt when the text does not start with an address or lacks the class or the ids.
std::optional<ListedDevice> parse_device(const std::string& text, int line) {
  std::string t = trim(text);
  auto sp = t.find_first_of(" \t");
  if (sp == std::string::npos) return std::nullopt;
  auto addr = PciAddress::parse(t.substr(0, sp));
  if (!addr) return std::nullopt;
  std::string rest = trim(t.substr(sp));
  static const std::regex cls(R"(\[([0-9a-fA-F]{4})\])");
  static const std::regex ids(R"(\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\])");
  std::smatch m;
  if (!std::regex_search(rest, m, cls)) return std::nullopt;
  ListedDevice d;
  d.address = *addr;
  d.class4 = lower(m[1]);
  std::string last_vendor, last_device;
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), ids); it != std::sregex_iterator(); ++it) {
    last_vendor = (*it)[1];
    last_device = (*it)[2];
  }
  if (last_vendor.empty()) return std::nullopt;
  d.vendor = lower(last_vendor);
  d.device = lower(last_device);
  d.text = rest;
  d.line = line;
  return d;
}

struct Parser {
  Listing out;
  std::map<std::string, ListedDevice> by_addr;
  std::optional<int> current_group;  // "IOMMU Group N:" header form
  std::string last;                  // address the detail lines belong to
  bool in_header = true;

  void ignore(int n, const std::string& t) { out.ignored.push_back("line " + std::to_string(n) + ": " + t); }

  void add(ListedDevice d) {
    std::string key = d.address.str();
    if (d.group) out.has_groups = true;
    auto it = by_addr.find(key);
    if (it == by_addr.end()) {
      by_addr.emplace(key, d);
    } else {
      ListedDevice& e = it->second;
      if (e.group && d.group && *e.group != *d.group)
        out.problems.push_back(key + " is in IOMMU group " + std::to_string(*e.group) + " (line " + std::to_string(e.line) +
                               ") and in group " + std::to_string(*d.group) + " (line " + std::to_string(d.line) + ")");
      if (!e.group) e.group = d.group;
      if (e.class4 != d.class4 || e.vendor != d.vendor || e.device != d.device)
        out.problems.push_back(key + " is listed differently on lines " + std::to_string(e.line) + " and " +
                               std::to_string(d.line));
    }
    last = key;
  }

  void detail(const std::string& t) {
    ListedDevice& d = by_addr.at(last);
    if (starts(t, "Subsystem:")) {
      static const std::regex ids(R"(\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\])");
      std::string v, dv;
      for (auto it = std::sregex_iterator(t.begin(), t.end(), ids); it != std::sregex_iterator(); ++it) {
        v = (*it)[1];
        dv = (*it)[2];
      }
      if (!v.empty()) {
        d.subsystem_vendor = lower(v);
        d.subsystem_device = lower(dv);
      }
    } else if (starts(t, "Kernel driver in use:")) {
      d.driver = trim(t.substr(std::string("Kernel driver in use:").size()));
    }
    // "Kernel modules:", "Control:", ... say nothing sysfs needs.
  }

  void header(const std::string& t) {
    std::string body = trim(t.substr(1));
    auto colon = body.find(':');
    if (colon == std::string::npos) return;
    std::string key = trim(body.substr(0, colon)), value = trim(body.substr(colon + 1));
    auto& slot = out.header[key];
    slot = slot.empty() ? value : (key == "note" ? slot + " | " + value : slot);
  }

  void line(const std::string& raw0, int n) {
    std::string raw = raw0;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    std::string t = trim(raw);
    if (t.empty()) {
      current_group.reset();
      last.clear();
      return;
    }
    if (t[0] == '#') {
      if (in_header) header(t);
      else ignore(n, t);
      return;
    }
    in_header = false;
    if (starts(t, "...")) {
      current_group.reset();
      last.clear();
      ignore(n, t);
      return;
    }
    if (starts(t, "BOOT_IMAGE=")) {
      out.cmdline = t;
      return;
    }
    static const std::regex group_re(R"(^IOMMU [Gg]roup\s+(\d+)\s*:?\s*(.*)$)");
    std::smatch m;
    if (std::regex_match(t, m, group_re)) {
      int g = std::stoi(m[1]);
      std::string rest = m[2];
      if (rest.empty()) {
        current_group = g;
        last.clear();
        return;
      }
      auto d = parse_device(rest, n);
      if (!d) return ignore(n, t);
      d->group = g;
      add(*d);
      return;
    }
    bool indented = raw[0] == ' ' || raw[0] == '\t';
    if (auto d = parse_device(t, n)) {
      if (current_group) d->group = current_group;  // under an "IOMMU Group N:" header
      add(*d);
      return;
    }
    if (indented && !last.empty()) return detail(t);
    ignore(n, t);
  }
};

}  // namespace

const ListedDevice* Listing::find(const std::string& address) const {
  for (const auto& d : devices)
    if (d.address.str() == address) return &d;
  return nullptr;
}

Listing parse_listing(std::string_view text) {
  Parser p;
  std::istringstream in{std::string(text)};
  std::string l;
  int n = 0;
  while (std::getline(in, l)) p.line(l, ++n);
  for (auto& [a, d] : p.by_addr) p.out.devices.push_back(d);  // std::map: sorted by address
  return p.out;
}

}  // namespace gpuhook::fixtures
