#include "engine/journal.h"

#include <charconv>

namespace gpuhook {

std::string escape_value(std::string_view v) {
  static const char* hex = "0123456789ABCDEF";
  std::string o;
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f || c == '%' || c == '=') {
      o += '%';
      o += hex[c >> 4];
      o += hex[c & 15];
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

std::string unescape_value(std::string_view v, bool* ok) {
  std::string o;
  if (ok) *ok = true;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size()) {
      unsigned x = 0;
      auto r = std::from_chars(v.data() + i + 1, v.data() + i + 3, x, 16);
      if (r.ec == std::errc() && r.ptr == v.data() + i + 3) {
        o += static_cast<char>(x);
        i += 2;
        continue;
      }
      if (ok) *ok = false;
    } else if (v[i] == '%') {
      if (ok) *ok = false;
    }
    o += v[i];
  }
  return o;
}

std::string Journal::serialize() const {
  std::string s =
      "# gpuhook journal: the changes gpuhook made to this host for VM '" + escape_value(vm) +
      "', oldest first.\n"
      "# 'step' is written before a change (with the state before it), 'done' after it.\n"
      "# Undo: `gpuhook restore " + escape_value(vm) + "` (README: Recovering by hand).\n" +
      (version_known() ? "gpuhook-journal " + std::to_string(version) : header_line) + "\nvm " + escape_value(vm) +
      "\n";
  if (!timeouts.empty()) {
    s += "timeouts";
    for (const auto& [k, v] : timeouts) s += " " + escape_value(k) + "=" + escape_value(v);
    s += "\n";
  }
  for (const auto& e : entries) {
    s += "step " + std::to_string(e.seq) + " " + e.kind + " phase=" + escape_value(e.phase);
    for (const auto& [k, v] : e.fields) s.append(" ").append(escape_value(k)).append("=").append(escape_value(v));
    s += "\n";
    if (e.done) s += "done " + std::to_string(e.seq) + "\n";
  }
  if (!damaged.empty()) {
    s += "# Lines gpuhook could not read, kept (escaped) for a person to check: README, \"The journal\".\n";
    for (const auto& d : damaged) s += "damaged " + escape_value(d) + "\n";
  }
  return s;
}

namespace {
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> w;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t b = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > b) w.push_back(line.substr(b, i - b));
  }
  return w;
}

bool valid_kind(std::string_view k) {
  if (k.empty() || k.size() > 64) return false;
  for (char c : k)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_')) return false;
  return true;
}

bool parse_int(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && out > 0;
}
}  // namespace

Journal Journal::parse(std::string_view text) {
  Journal j;
  bool header = false;
  size_t lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    bool complete = nl != std::string_view::npos;
    std::string_view line = text.substr(pos, complete ? nl - pos : std::string_view::npos);
    pos = complete ? nl + 1 : text.size();
    ++lineno;
    auto bad = [&](const std::string& why, std::string_view raw = {}) {
      std::string_view keep = raw.empty() ? line : raw;
      std::string shown(keep.substr(0, 80));
      for (auto& c : shown)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
      j.problems.push_back("line " + std::to_string(lineno) + ": " + why + ": '" + shown + "'");
      j.damaged.emplace_back(keep.substr(0, 4096));
    };
    if (line.empty() || line[0] == '#') continue;
    if (!complete) {
      bad("truncated line");
      continue;
    }
    auto w = words(line);
    if (w.empty()) continue;
    if (w[0] == "gpuhook-journal") {
      int v = 0;
      if (header) {
        bad("a second header");
      } else if (w.size() != 2 || !parse_int(w[1], v) || (v != 1 && v != 2)) {
        // Reported, and the line kept as it is: the file stays of an unknown version.
        std::string shown(line.substr(0, 80));
        for (auto& c : shown)
          if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
        j.problems.push_back("line " + std::to_string(lineno) + ": unknown journal version (this gpuhook reads "
                             "versions 1 and 2): '" + shown + "'");
        j.version = -1;
        j.header_line = std::string(line.substr(0, 4096));
      } else {
        j.version = v;
      }
      header = true;
    } else if (w[0] == "damaged" && w.size() == 2) {
      bool ok = true;
      std::string raw = unescape_value(w[1], &ok);
      bad("a line an earlier gpuhook could not read", raw);
    } else if (w[0] == "timeouts") {
      bool ok = true;
      Record t;
      for (size_t i = 1; i < w.size() && ok; ++i) {
        auto eq = w[i].find('=');
        if (eq == std::string_view::npos || eq == 0) { ok = false; break; }
        bool kok = true, vok = true;
        std::string key = unescape_value(w[i].substr(0, eq), &kok);
        std::string val = unescape_value(w[i].substr(eq + 1), &vok);
        ok = kok && vok;
        t[key] = val;
      }
      if (!ok) bad("malformed timeouts");
      else j.timeouts = std::move(t);
    } else if (w[0] == "vm" && w.size() == 2) {
      j.vm = unescape_value(w[1]);
    } else if (w[0] == "step" && w.size() >= 3) {
      JournalEntry e;
      if (!parse_int(w[1], e.seq) || !valid_kind(w[2])) {
        bad("malformed step");
        continue;
      }
      if (!j.entries.empty() && e.seq <= j.entries.back().seq) {
        bad("step number out of order");
        continue;
      }
      bool ok = true;
      for (size_t i = 3; i < w.size(); ++i) {
        auto eq = w[i].find('=');
        if (eq == std::string_view::npos || eq == 0) {
          ok = false;
          break;
        }
        bool kok = true, vok = true;
        std::string key = unescape_value(w[i].substr(0, eq), &kok);
        std::string val = unescape_value(w[i].substr(eq + 1), &vok);
        if (!vok || !kok || key.empty()) ok = false;
        if (key == "phase") e.phase = val;
        else e.fields[key] = val;
      }
      if (!ok) {
        bad("malformed field in step");
        continue;
      }
      if (e.phase.empty()) e.phase = "prepare";
      e.kind = std::string(w[2]);
      j.entries.push_back(std::move(e));
    } else if (w[0] == "done" && w.size() == 2) {
      int seq = 0;
      if (!parse_int(w[1], seq)) {
        bad("malformed done");
        continue;
      }
      bool found = false;
      for (auto& e : j.entries)
        if (e.seq == seq) e.done = found = true;
      if (!found) bad("done for an unknown step");
    } else {
      bad("unknown line");
    }
  }
  if (!header && (!j.entries.empty() || !j.problems.empty()))
    // Damaged, not of another version: the readable steps are still undone (as version 1).
    j.problems.insert(j.problems.begin(), "the 'gpuhook-journal N' header is missing");
  return j;
}

Result<Journal> JournalStore::load(const std::string& vm) {
  std::string p = path(vm);
  auto info = fs_.stat(p, false);
  if (info.type == FileType::missing) {
    Journal j;
    j.vm = vm;
    return j;
  }
  if (info.type != FileType::regular) {
    Error e;
    e.what = "journal " + p + " is not a regular file";
    e.why = "refusing to follow a link or read a special file";
    e.hint = "remove it after checking the host by hand (gpuhook status)";
    return e;
  }
  auto r = fs_.read(p);
  if (!r) return r.error();
  Journal j = Journal::parse(*r);
  // The file's name says whose journal it is. A 'vm' line naming another VM (an edited or copied
  // file) must never make a save write that VM's journal, or a path built from that name.
  if (!j.vm.empty() && j.vm != vm) {
    j.problems.push_back("the journal names VM '" + escape_value(j.vm) + "', not '" + escape_value(vm) + "'");
    j.damaged.push_back("vm " + escape_value(j.vm));  // kept for the person who checks it
  }
  j.vm = vm;
  return j;
}

Status JournalStore::save(const Journal& j) {
  if (auto s = fs_.make_dirs(dir_, 0700); !s) return s;
  return fs_.write_atomic(path(j.vm), j.serialize(), 0600);
}

std::vector<std::string> JournalStore::vms() {
  std::vector<std::string> v;
  auto r = fs_.list(dir_);
  if (!r) return v;
  const std::string suffix = ".journal";
  for (const auto& n : *r)
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      v.push_back(n.substr(0, n.size() - suffix.size()));
  return v;
}

}  // namespace gpuhook
