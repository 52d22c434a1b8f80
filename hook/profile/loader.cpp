// Profile and global config loading: the one file that uses toml++. Validation is strict and
// reports every problem at once, each as "path:line:col: what is wrong".
// toml++ is used header-only (CMakeLists.txt). Its parser asserts on input it then rejects with a
// proper error (toml++ 3.3.0: "[[[" fails `is_bare_key_character(*cp) || ...` in parse_key);
// Debian's compiled library has its asserts off (NDEBUG), and so has gpuhook in every build,
// tests and fuzzers included: a profile is input, never a reason to abort.
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>

#include "profile/profile.h"
#include "sysinfo/pci.h"

namespace gpuhook {

const char* to_string(DisplayMode m) {
  switch (m) {
    case DisplayMode::external: return "external";
    case DisplayMode::takeover: return "takeover";
    case DisplayMode::mux: return "mux";
    case DisplayMode::ddc: return "ddc";
    case DisplayMode::command: return "command";
    case DisplayMode::looking_glass: return "looking-glass";
  }
  return "?";
}
const char* to_string(HolderPolicy p) { return p == HolderPolicy::refuse ? "refuse" : "terminate"; }
const char* to_string(MuxMethod m) { return m == MuxMethod::switcheroo ? "switcheroo" : "acpi"; }

std::string vm_name_problem(std::string_view vm) {
  if (vm.empty()) return "the VM name is empty";
  if (vm.size() > 200) return "the VM name is longer than 200 bytes";
  if (vm[0] == '.') return "the VM name starts with '.'";
  for (unsigned char c : vm) {
    if (c == '/') return "the VM name contains '/'";
    if (c < 0x20 || c == 0x7f) return "the VM name contains a control character";
  }
  return "";
}

std::string profile_path(std::string_view vm) { return std::string(kProfileDir) + "/" + std::string(vm) + ".toml"; }

namespace {

std::string mode_octal(unsigned m) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", m & 07777);
  return b;
}

// `fi` describes `path` without following a link in its last component.
std::string trust_info(const FileInfo& fi, const std::string& path, bool dir) {
  std::string fix = dir ? "fix: chown root:root " + path + " && chmod 0755 " + path
                        : "fix: chown root:root " + path + " && chmod 0644 " + path;
  if (fi.type == FileType::missing) return "";
  if (fi.type == FileType::symlink) return path + " is a symbolic link; it must be a real " + (dir ? "directory" : "file");
  if (dir ? fi.type != FileType::directory : fi.type != FileType::regular)
    return path + std::string(" is not a ") + (dir ? "directory" : "regular file");
  if (fi.uid != 0)
    return path + " is owned by uid " + std::to_string(fi.uid) + ", not root; root runs what it says (" + fix + ")";
  if (fi.mode & 022)
    return path + " is writable by group or others (mode " + mode_octal(fi.mode) +
           "); root runs what it says (" + fix + ")";
  return "";
}

std::string trust_one(Fs& fs, const std::string& path, bool dir) { return trust_info(fs.stat(path, false), path, dir); }

}  // namespace

std::string file_trust_problem(Fs& fs, const std::string& path) {
  if (auto p = trust_one(fs, path, false); !p.empty()) return p;
  return trust_one(fs, dirname_of(path), true);
}

namespace {

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

class Checker {
 public:
  Checker(std::string path, ConfigErrors* errs) : path_(std::move(path)), errs_(errs) {}

  void at(const toml::source_region& r, const std::string& msg) {
    add(r.begin.line ? r.begin.line : 1, r.begin.column ? r.begin.column : 1, msg);
  }
  void add(unsigned line, unsigned col, const std::string& msg) {
    errs_->lines.push_back(path_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + msg);
  }
  bool failed() const { return !errs_->empty(); }

  // Every key of `t` must be one of `allowed`; otherwise an error naming the nearest valid key.
  // `where` is the table as a person writes it ("[gpu]", "" for the top level); sub-tables are
  // named as tables: "unknown table [dispaly]; did you mean [display]?".
  void keys(const toml::table& t, const std::string& where, std::initializer_list<std::string_view> allowed) {
    std::string prefix;  // "display." for [display]
    if (where.size() > 2 && where.front() == '[' && where[1] != '[') prefix = where.substr(1, where.size() - 2) + ".";
    for (auto&& [k, v] : t) {
      std::string_view name = k.str();
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      std::string_view best;
      size_t bd = 1000;
      for (auto a : allowed) {
        size_t d = edit_distance(name, a);
        if (d < bd) bd = d, best = a;
      }
      bool close = !best.empty() && bd <= std::max<size_t>(2, best.size() / 3);
      // The key as shown: at most 60 bytes, control characters as '?' (it ends up on virsh's stderr).
      std::string shown;
      for (unsigned char c : name.substr(0, 60)) shown += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
      if (name.size() > 60) shown += "...";
      std::string msg;
      if (v.is_table() && (where.empty() || !prefix.empty())) {
        msg = "unknown table [" + prefix + shown + "]";
        if (close) msg += "; did you mean [" + prefix + std::string(best) + "]?";
      } else {
        msg = "unknown key '" + shown + "'" + (where.empty() ? " at the top level" : " in " + where);
        if (close) msg += "; did you mean '" + std::string(best) + "'?";
      }
      if (!close) {
        msg += "; valid keys:";
        for (auto a : allowed) msg.append(" ").append(a);
      }
      at(k.source(), msg);
    }
  }

  const toml::table* table(const toml::table& t, std::string_view key, const std::string& shown) {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (auto* tt = n->as_table()) return tt;
    at(n->source(), shown + " must be a table, not " + type_name(n->type()));
    return nullptr;
  }

  std::optional<std::string> str(const toml::table& t, std::string_view key, const std::string& shown) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (auto* s = n->as_string()) return s->get();
    at(n->source(), shown + " must be a string, not " + type_name(n->type()));
    return std::nullopt;
  }

  std::optional<bool> boolean(const toml::table& t, std::string_view key, const std::string& shown) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (auto* b = n->as_boolean()) return b->get();
    at(n->source(), shown + " must be true or false, not " + type_name(n->type()));
    return std::nullopt;
  }

  std::optional<long long> integer(const toml::table& t, std::string_view key, const std::string& shown, long long lo,
                                   long long hi, const char* unit = "") {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    auto* i = n->as_integer();
    if (!i) {
      at(n->source(), shown + " must be an integer, not " + type_name(n->type()));
      return std::nullopt;
    }
    long long v = i->get();
    if (v < lo || v > hi) {
      at(n->source(), shown + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + unit +
                          ", not " + std::to_string(v));
      return std::nullopt;
    }
    return v;
  }

  // An array of strings; each element checked by `elem` (returns "" when fine).
  std::optional<std::vector<std::string>> strings(const toml::table& t, std::string_view key, const std::string& shown,
                                                  const std::function<std::string(const std::string&, size_t)>& elem) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    auto* a = n->as_array();
    if (!a) {
      at(n->source(), shown + " must be an array of strings, not " + type_name(n->type()));
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      auto* s = e.as_string();
      if (!s) {
        at(e.source(), shown + "[" + std::to_string(i) + "] must be a string, not " + type_name(e.type()));
        ok = false;
        continue;
      }
      std::string why = elem ? elem(s->get(), i) : "";
      if (!why.empty()) {
        at(e.source(), shown + "[" + std::to_string(i) + "] " + why);
        ok = false;
        continue;
      }
      out.push_back(s->get());
    }
    if (!ok) return std::nullopt;
    return out;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  ConfigErrors* errs_;
};

std::string shown_value(const std::string& v) {
  std::string s;
  for (unsigned char c : v.substr(0, 60)) s += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  if (v.size() > 60) s += "...";
  return s;
}

std::string address_problem(const std::string& v) {
  if (PciAddress::parse(v)) return "";
  return "'" + shown_value(v) + "' is not a PCI address (expected DDDD:BB:SS.F, e.g. \"0000:01:00.0\")";
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string argv_problem(const std::string& v, size_t i) {
  if (has_nul(v)) return "contains a NUL character";
  if (i == 0 && (v.empty() || v[0] != '/'))
    return "'" + shown_value(v) + "' must be an absolute path (root runs it with no search PATH)";
  if (v.size() > 4096) return "is longer than 4096 bytes";
  return "";
}

std::string unit_problem(const std::string& v, size_t) {
  if (v.empty() || v.size() > 255) return "must be a unit name of 1 to 255 characters";
  if (v[0] == '-') return "'" + shown_value(v) + "' must not start with '-'";
  for (unsigned char c : v)
    if (!(std::isalnum(c) || c == ':' || c == '_' || c == '.' || c == '\\' || c == '@' || c == '-'))
      return "'" + shown_value(v) + "' is not a systemd unit name";
  return "";
}

std::string module_problem(const std::string& v, size_t) {
  if (v.empty() || v.size() > 64) return "must be a module name of 1 to 64 characters";
  if (v[0] == '-') return "'" + shown_value(v) + "' must not start with '-'";
  for (unsigned char c : v)
    if (!(std::isalnum(c) || c == '_' || c == '-')) return "'" + shown_value(v) + "' is not a kernel module name";
  return "";
}

// A login name as useradd accepts it (Debian's default NAME_REGEX, plus upper case and '.').
std::string user_problem(const std::string& v) {
  bool ok = !v.empty() && v.size() <= 32 && v[0] != '-' && v[0] != '.';
  for (unsigned char ch : v) ok &= std::isalnum(ch) || ch == '_' || ch == '-' || ch == '.';
  if (!ok) return "'" + shown_value(v) + "' is not a user name (letters, digits, _ - ., at most 32)";
  if (v == "root") return "must not be root: the client runs in a desktop user's session, not as root";
  return "";
}

std::string acpi_problem(const std::string& v) {
  // \_SB.PCI0.PEG0.PEGP : segments of 1-4 of [A-Z0-9_], optional leading backslash.
  std::string_view s = v;
  if (!s.empty() && s[0] == '\\') s.remove_prefix(1);
  if (s.empty() || s.size() > 200) return "'" + shown_value(v) + "' is not an ACPI path (e.g. '\\_SB.PCI0.PEG0.PEGP')";
  size_t seg = 0;
  for (char c : s) {
    if (c == '.') {
      if (seg == 0) return "'" + shown_value(v) + "' is not an ACPI path (e.g. '\\_SB.PCI0.PEG0.PEGP')";
      seg = 0;
      continue;
    }
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') || ++seg > 4)
      return "'" + shown_value(v) + "' is not an ACPI path (e.g. '\\_SB.PCI0.PEG0.PEGP')";
  }
  if (seg == 0) return "'" + shown_value(v) + "' is not an ACPI path (e.g. '\\_SB.PCI0.PEG0.PEGP')";
  return "";
}

void read_timeouts(Checker& c, const toml::table& root, Timeouts& t) {
  auto* tt = c.table(root, "timeouts", "timeouts");
  if (!tt) return;
  c.keys(*tt, "[timeouts]", {"event", "unbind", "command", "service", "terminate"});
  if (auto v = c.integer(*tt, "event", "[timeouts] event", 1, 600, " (seconds)")) t.event_ms = *v * 1000;
  if (auto v = c.integer(*tt, "unbind", "[timeouts] unbind", 1, 300, " (seconds)")) t.unbind_ms = *v * 1000;
  if (auto v = c.integer(*tt, "command", "[timeouts] command", 1, 300, " (seconds)")) t.command_ms = *v * 1000;
  if (auto v = c.integer(*tt, "service", "[timeouts] service", 1, 300, " (seconds)")) t.service_ms = *v * 1000;
  if (auto v = c.integer(*tt, "terminate", "[timeouts] terminate", 1, 120, " (seconds)")) t.terminate_ms = *v * 1000;
}

template <class T, class F>
bool parse_toml(std::string_view text, const std::string& path, ConfigErrors* errors, F&& body, T& out) {
  if (text.size() > (1u << 20)) {
    errors->lines.push_back(path + ":1:1: the file is larger than 1 MiB; this is not a gpuhook profile");
    return false;
  }
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    std::string d(e.description());
    errors->lines.push_back(path + ":" + std::to_string(b.line ? b.line : 1) + ":" +
                            std::to_string(b.column ? b.column : 1) + ": " + d);
    return false;
  }
  size_t first = errors->lines.size();
  Checker c(path, errors);
  body(c, root, out);
  // In file order: "path:LINE:COL: ..." sorted by line, then column.
  auto pos = [&](const std::string& l) {
    unsigned line = 0, col = 0;
    std::sscanf(l.c_str() + path.size(), ":%u:%u:", &line, &col);
    return std::pair{line, col};
  };
  std::stable_sort(errors->lines.begin() + static_cast<long>(first), errors->lines.end(),
                   [&](const std::string& a, const std::string& b) { return pos(a) < pos(b); });
  return !c.failed();
}

void profile_body(Checker& c, const toml::table& root, Profile& p) {
  c.keys(root, "", {"gpu", "display", "host", "commands", "timeouts", "tuning"});

  auto* gpu = c.table(root, "gpu", "gpu");
  if (!gpu && !root.get("gpu")) c.add(1, 1, "[gpu] address is required (the PCI address of the GPU, e.g. \"0000:01:00.0\")");
  if (gpu) {
    c.keys(*gpu, "[gpu]", {"address", "also"});
    if (auto a = c.str(*gpu, "address", "[gpu] address")) {
      std::string why = address_problem(*a);
      if (!why.empty()) c.at(gpu->get("address")->source(), "[gpu] address " + why);
      else p.gpu_address = PciAddress::parse(*a)->str();
    } else if (!gpu->get("address")) {
      c.at(gpu->source(), "[gpu] address is required (the PCI address of the GPU, e.g. \"0000:01:00.0\")");
    }
    auto also = c.strings(*gpu, "also", "[gpu] also", [](const std::string& v, size_t) { return address_problem(v); });
    if (also) {
      for (size_t i = 0; i < also->size(); ++i) {
        std::string a = PciAddress::parse((*also)[i])->str();
        const toml::node* n = gpu->get("also")->as_array()->get(i);
        if (a == p.gpu_address) c.at(n->source(), "[gpu] also[" + std::to_string(i) + "] repeats [gpu] address");
        else if (std::find(p.also.begin(), p.also.end(), a) != p.also.end())
          c.at(n->source(), "[gpu] also[" + std::to_string(i) + "] '" + a + "' is listed twice");
        else p.also.push_back(a);
      }
    }
  }

  const toml::table* display = c.table(root, "display", "display");
  const toml::table *mux = nullptr, *ddc = nullptr, *cmd = nullptr, *lg = nullptr;
  if (display) {
    c.keys(*display, "[display]", {"mode", "mux", "ddc", "command", "looking_glass"});
    if (auto m = c.str(*display, "mode", "[display] mode")) {
      if (*m == "external") p.mode = DisplayMode::external;
      else if (*m == "takeover") p.mode = DisplayMode::takeover;
      else if (*m == "mux") p.mode = DisplayMode::mux;
      else if (*m == "ddc") p.mode = DisplayMode::ddc;
      else if (*m == "command") p.mode = DisplayMode::command;
      else if (*m == "looking-glass") p.mode = DisplayMode::looking_glass;
      else
        c.at(display->get("mode")->source(),
             "[display] mode '" + shown_value(*m) + "' is not one of: external, takeover, mux, ddc, command, looking-glass");
    }
    mux = c.table(*display, "mux", "[display] mux");
    ddc = c.table(*display, "ddc", "[display] ddc");
    cmd = c.table(*display, "command", "[display] command");
    lg = c.table(*display, "looking_glass", "[display] looking_glass");
  }
  auto src = [&](const toml::table* t) { return t ? t->source() : (display ? display->source() : root.source()); };
  if (mux) {
    c.keys(*mux, "[display.mux]", {"method", "acpi_dgpu", "acpi_igpu"});
    if (auto m = c.str(*mux, "method", "[display.mux] method")) {
      if (*m == "switcheroo") p.mux_method = MuxMethod::switcheroo;
      else if (*m == "acpi") p.mux_method = MuxMethod::acpi;
      else c.at(mux->get("method")->source(), "[display.mux] method '" + shown_value(*m) + "' is not one of: switcheroo, acpi");
    }
    for (auto [key, field] : {std::pair{"acpi_dgpu", &p.acpi_dgpu}, std::pair{"acpi_igpu", &p.acpi_igpu}}) {
      if (auto v = c.str(*mux, key, std::string("[display.mux] ") + key)) {
        std::string why = acpi_problem(*v);
        if (!why.empty()) c.at(mux->get(key)->source(), std::string("[display.mux] ") + key + " " + why);
        else *field = (*v)[0] == '\\' ? *v : "\\" + *v;
      }
    }
  }
  if (p.mode == DisplayMode::mux) {
    if (!mux || !mux->get("method"))
      c.at(src(mux), "[display] mode 'mux' needs [display.mux] method = \"switcheroo\" or \"acpi\"");
    else if (p.mux_method == MuxMethod::acpi && (!mux->get("acpi_dgpu") || !mux->get("acpi_igpu")))
      c.at(src(mux), "[display.mux] method 'acpi' needs acpi_dgpu and acpi_igpu (the ACPI devices with the MXDS method)");
  }
  if (ddc) {
    c.keys(*ddc, "[display.ddc]", {"bus", "vm_input", "host_input"});
    if (auto v = c.integer(*ddc, "bus", "[display.ddc] bus", 0, 255)) p.ddc_bus = static_cast<int>(*v);
    if (auto v = c.integer(*ddc, "vm_input", "[display.ddc] vm_input", 0, 255)) p.ddc_vm_input = static_cast<int>(*v);
    if (auto v = c.integer(*ddc, "host_input", "[display.ddc] host_input", 0, 255)) p.ddc_host_input = static_cast<int>(*v);
  }
  if (p.mode == DisplayMode::ddc && (!ddc || !ddc->get("bus") || !ddc->get("vm_input")))
    c.at(src(ddc), "[display] mode 'ddc' needs [display.ddc] bus and vm_input");
  if (cmd) {
    c.keys(*cmd, "[display.command]", {"switch", "restore"});
    if (auto v = c.strings(*cmd, "switch", "[display.command] switch", argv_problem)) p.switch_cmd = *v;
    if (auto v = c.strings(*cmd, "restore", "[display.command] restore", argv_problem)) p.restore_cmd = *v;
    for (auto key : {"switch", "restore"}) {
      auto* a = cmd->get(key) ? cmd->get(key)->as_array() : nullptr;
      if (a && a->empty()) c.at(cmd->get(key)->source(), std::string("[display.command] ") + key + " must not be empty");
    }
  }
  if (p.mode == DisplayMode::command && (!cmd || !cmd->get("switch") || !cmd->get("restore")))
    c.at(src(cmd), "[display] mode 'command' needs [display.command] switch and restore");

  if (lg) {
    c.keys(*lg, "[display.looking_glass]", {"client", "user", "width", "height"});
    if (auto v = c.strings(*lg, "client", "[display.looking_glass] client", argv_problem)) {
      if (v->empty()) c.at(lg->get("client")->source(), "[display.looking_glass] client must not be empty");
      p.looking_glass.client = *v;
    }
    if (auto v = c.str(*lg, "user", "[display.looking_glass] user")) {
      std::string why = user_problem(*v);
      if (!why.empty()) c.at(lg->get("user")->source(), "[display.looking_glass] user " + why);
      else p.looking_glass.user = *v;
    }
    if (auto v = c.integer(*lg, "width", "[display.looking_glass] width", 320, 16384, " (pixels)")) p.looking_glass.width = static_cast<int>(*v);
    if (auto v = c.integer(*lg, "height", "[display.looking_glass] height", 200, 16384, " (pixels)")) p.looking_glass.height = static_cast<int>(*v);
  }
  if (p.mode == DisplayMode::looking_glass && (!lg || !lg->get("client") || !lg->get("user")))
    c.at(src(lg), "[display] mode 'looking-glass' needs [display.looking_glass] client (e.g. [\"/usr/local/bin/looking-glass-client\", \"-F\"]) and user (the desktop user who sees the VM)");
  if (auto* tu = c.table(root, "tuning", "tuning")) {
    c.keys(*tu, "[tuning]", {"hugepages", "isolate_cpus", "governor", "inhibit_sleep", "shared_memory"});
    if (auto v = c.boolean(*tu, "hugepages", "[tuning] hugepages")) p.tuning.hugepages = *v;
    if (auto v = c.boolean(*tu, "isolate_cpus", "[tuning] isolate_cpus")) p.tuning.isolate_cpus = *v;
    if (auto v = c.boolean(*tu, "inhibit_sleep", "[tuning] inhibit_sleep")) p.tuning.inhibit_sleep = *v;
    if (auto v = c.boolean(*tu, "shared_memory", "[tuning] shared_memory")) p.tuning.shared_memory = *v;
    if (auto v = c.str(*tu, "governor", "[tuning] governor")) {
      bool ok = !v->empty() && v->size() <= 15 && (*v)[0] != '-';
      for (unsigned char ch : *v) ok &= std::isalnum(ch) || ch == '_' || ch == '-';
      if (!ok) c.at(tu->get("governor")->source(), "[tuning] governor '" + shown_value(*v) +
                                                     "' is not a cpufreq governor name (e.g. \"performance\"; see scaling_available_governors)");
      else p.tuning.governor = *v;
    }
  }

  // Mode defaults, then [host] overrides.
  if (p.mode == DisplayMode::takeover) {
    p.unbind_consoles = p.release_framebuffer = true;
    p.stop_services = {"display-manager.service"};
  }
  if (auto* host = c.table(root, "host", "host")) {
    c.keys(*host, "[host]", {"stop_services", "unload_modules", "unbind_consoles", "release_framebuffer", "unload_vfio", "holders"});
    if (auto v = c.strings(*host, "stop_services", "[host] stop_services", unit_problem)) p.stop_services = *v;
    if (auto v = c.strings(*host, "unload_modules", "[host] unload_modules", module_problem)) p.unload_modules = *v;
    if (auto v = c.boolean(*host, "unbind_consoles", "[host] unbind_consoles")) p.unbind_consoles = *v;
    if (auto v = c.boolean(*host, "release_framebuffer", "[host] release_framebuffer")) p.release_framebuffer = *v;
    if (auto v = c.boolean(*host, "unload_vfio", "[host] unload_vfio")) p.unload_vfio = *v;
    if (auto v = c.str(*host, "holders", "[host] holders")) {
      if (*v == "refuse") p.holders = HolderPolicy::refuse;
      else if (*v == "terminate") p.holders = HolderPolicy::terminate;
      else c.at(host->get("holders")->source(), "[host] holders '" + shown_value(*v) + "' is not one of: refuse, terminate");
    }
  }

  if (const toml::node* n = root.get("commands")) {
    auto* arr = n->as_array();
    if (!arr) {
      c.at(n->source(), "commands must be an array of tables ([[commands]]), not " + std::string(type_name(n->type())));
    } else {
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::node& e = *arr->get(i);
        std::string where = "[[commands]] #" + std::to_string(i + 1);
        auto* t = e.as_table();
        if (!t) {
          c.at(e.source(), where + " must be a table, not " + type_name(e.type()));
          continue;
        }
        c.keys(*t, where, {"when", "run", "undo"});
        ProfileCommand pc;
        pc.line = static_cast<int>(t->source().begin.line);
        if (auto w = c.str(*t, "when", where + " when")) {
          if (*w == "prepare" || *w == "start" || *w == "started") pc.when = *w;
          else c.at(t->get("when")->source(), where + " when '" + shown_value(*w) + "' is not one of: prepare, start, started");
        } else if (!t->get("when")) {
          c.at(t->source(), where + " needs when = \"prepare\", \"start\" or \"started\"");
        }
        if (auto r = c.strings(*t, "run", where + " run", argv_problem)) {
          if (r->empty()) c.at(t->get("run")->source(), where + " run must not be empty");
          pc.run = *r;
        } else if (!t->get("run")) {
          c.at(t->source(), where + " needs run = [\"/absolute/program\", \"arg\", ...]");
        }
        if (auto u = c.strings(*t, "undo", where + " undo", argv_problem)) {
          if (u->empty()) c.at(t->get("undo")->source(), where + " undo must not be empty (leave it out instead)");
          pc.undo = *u;
        }
        p.commands.push_back(std::move(pc));
      }
    }
  }
  read_timeouts(c, root, p.timeouts);
}

std::string abs_dir_problem(const std::string& v) {
  if (v.empty() || v[0] != '/') return "'" + shown_value(v) + "' must be an absolute path";
  if (v.find("/../") != std::string::npos || (v.size() >= 3 && v.compare(v.size() - 3, 3, "/..") == 0))
    return "'" + shown_value(v) + "' must not contain '..'";
  if (has_nul(v)) return "contains a NUL character";
  return "";
}

void global_body(Checker& c, const toml::table& root, GlobalConfig& g) {
  c.keys(root, "", {"log", "state", "timeouts"});
  if (auto* log = c.table(root, "log", "log")) {
    c.keys(*log, "[log]", {"level", "dir", "syslog"});
    if (auto v = c.str(*log, "level", "[log] level")) {
      if (!parse_level(*v, g.log_level) || *v == "off" || *v == "trace")
        c.at(log->get("level")->source(), "[log] level '" + shown_value(*v) + "' is not one of: debug, info, warn, error");
    }
    if (auto v = c.str(*log, "dir", "[log] dir")) {
      std::string why = abs_dir_problem(*v);
      if (!why.empty()) c.at(log->get("dir")->source(), "[log] dir " + why);
      else g.log_dir = *v;
    }
    if (auto v = c.boolean(*log, "syslog", "[log] syslog")) g.syslog = *v;
  }
  if (auto* st = c.table(root, "state", "state")) {
    c.keys(*st, "[state]", {"dir"});
    // Journals and locks live in /run/gpuhook, fixed: release must find a VM's journal whatever
    // happened to this file while the VM ran. The key stays readable with that one value.
    if (auto v = c.str(*st, "dir", "[state] dir")) {
      if (*v != "/run/gpuhook" && *v != "/run/gpuhook/")
        c.at(st->get("dir")->source(), "[state] dir '" + shown_value(*v) +
                                           "' is no longer supported: journals always live in /run/gpuhook, so that "
                                           "release finds them whatever this file says later; remove the [state] table");
    }
  }
  read_timeouts(c, root, g.timeouts);
}

}  // namespace

Result<Profile> parse_profile(std::string_view text, const std::string& path, const Timeouts& defaults,
                              ConfigErrors* errors) {
  ConfigErrors local;
  if (!errors) errors = &local;
  Profile p;
  p.path = path;
  p.timeouts = defaults;
  if (!parse_toml(text, path, errors, profile_body, p)) {
    Error e;
    e.what = "profile " + path + " is invalid";
    e.why = std::to_string(errors->lines.size()) + " problem(s)";
    e.hint = "fix each line above, then check with `gpuhook check <vm>`";
    return e;
  }
  return p;
}

namespace {
// The text of a file root acts on, after the trust checks; "what" names it in errors. The file is
// opened once without following a link (O_NOFOLLOW) and its owner and mode are those of that open
// descriptor (fstat): what is checked is what is read, no link is followed, and a swap between
// check and read changes nothing. Its directory is checked by path (lstat): replacing the
// directory or its entries needs write access to it or to its parent, which these very checks
// refuse to anyone but root.
Result<std::string> read_trusted(Fs& fs, const std::string& path, const std::string& what, ConfigErrors* errors) {
  auto f = fs.read_nofollow(path);
  std::string trust;
  if (f) trust = trust_info(f->info, path, false);
  else if (f.error().code == ELOOP) trust = trust_info(FileInfo{FileType::symlink}, path, false);
  else if (f.error().code == EINVAL) trust = trust_info(FileInfo{FileType::other}, path, false);
  else {
    errors->lines.push_back(path + ": " + f.error().message());
    return f.error();
  }
  if (trust.empty()) trust = trust_one(fs, dirname_of(path), true);
  if (!trust.empty()) {
    errors->lines.push_back(path + ": refused: " + trust);
    Error e;
    e.what = what + " " + path + " is not trusted";
    e.why = trust;
    return e;
  }
  return std::move(f->content);
}
}  // namespace

Result<Profile> load_profile(Fs& fs, const std::string& path, const Timeouts& defaults, ConfigErrors* errors) {
  ConfigErrors local;
  if (!errors) errors = &local;
  auto text = read_trusted(fs, path, "profile", errors);
  if (!text) return text.error();
  return parse_profile(*text, path, defaults, errors);
}

Result<GlobalConfig> parse_global(std::string_view text, const std::string& path, ConfigErrors* errors) {
  ConfigErrors local;
  if (!errors) errors = &local;
  GlobalConfig g;
  g.path = path;
  if (!parse_toml(text, path, errors, global_body, g)) {
    Error e;
    e.what = "global config " + path + " is invalid";
    e.why = std::to_string(errors->lines.size()) + " problem(s)";
    return e;
  }
  return g;
}

Result<GlobalConfig> load_global(Fs& fs, const std::string& path, ConfigErrors* errors) {
  ConfigErrors local;
  if (!errors) errors = &local;
  if (fs.stat(path, false).type == FileType::missing) return GlobalConfig{};
  auto text = read_trusted(fs, path, "global config", errors);
  if (!text) return text.error();
  return parse_global(*text, path, errors);
}

}  // namespace gpuhook
