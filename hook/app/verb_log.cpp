// `gpuhook log [VM] [--events N] [--follow] [--json]`: what happened, from the log file, one block
// per event (app/log_events.h says how lines become events).
#include <algorithm>
#include <cctype>
#include <map>

#include "app/log_events.h"
#include "app/verbs.h"
#include "profile/profile.h"

namespace gpuhook {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string_view next_word(std::string_view& s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(b);
  size_t e = s.find(' ');
  std::string_view w = s.substr(0, e);
  s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  return w;
}

// "(10 ms)" at the start of s -> 10; advances s past it.
long take_ms(std::string_view& s) {
  if (s.rfind(" (", 0) != 0) return -1;
  size_t close = s.find(" ms)");
  if (close == std::string_view::npos) return -1;
  std::string_view num = s.substr(2, close - 2);
  if (!all_digits(num) || num.size() > 12) return -1;
  s.remove_prefix(close + 4);
  return std::stol(std::string(num));
}

// "step N ok (T ms): text" / "step N FAILED (T ms): text: why"
bool parse_step(const std::string& m, LogStep& st) {
  std::string_view s = m;
  if (s.rfind("step ", 0) != 0) return false;
  s.remove_prefix(5);
  std::string_view n = next_word(s);
  if (!all_digits(n) || n.size() > 9) return false;
  std::string_view status = next_word(s);
  if (status != "ok" && status != "FAILED") return false;
  st.n = std::stoi(std::string(n));
  st.status = std::string(status);
  st.ms = take_ms(s);
  if (s.rfind(": ", 0) == 0) s.remove_prefix(2);
  st.text = std::string(s);
  return true;
}

// "undo N KIND ok (T ms)", "undo N KIND ok", "undo N KIND FAILED (T ms): why", "undo N KIND FAILED: why",
// "undo N KIND: cannot be restored until reboot: why", "undo N KIND kept (T ms): why",
// "undo N KIND kept in the journal: why"
bool parse_undo(const std::string& m, LogStep& st) {
  std::string_view s = m;
  if (s.rfind("undo ", 0) != 0) return false;
  s.remove_prefix(5);
  std::string_view n = next_word(s);
  if (!all_digits(n) || n.size() > 9) return false;
  st.n = std::stoi(std::string(n));
  std::string_view kind = next_word(s);
  if (kind.empty()) return false;
  if (kind.back() == ':') {  // "KIND: cannot be restored until reboot: why"
    st.kind = std::string(kind.substr(0, kind.size() - 1));
    st.status = "gone";
    std::string_view why = s.substr(std::min(s.size(), s.find_first_not_of(' ')));
    constexpr std::string_view pre = "cannot be restored until reboot: ";
    if (why.rfind(pre, 0) == 0) why.remove_prefix(pre.size());
    st.text = std::string(why);
    return true;
  }
  st.kind = std::string(kind);
  std::string_view status = next_word(s);
  bool colon = status.size() > 1 && status.back() == ':';  // "FAILED: why" (rollback)
  if (colon) status.remove_suffix(1);
  if (status != "ok" && status != "FAILED" && status != "kept") return false;
  st.status = std::string(status);
  if (!colon) st.ms = take_ms(s);
  if (colon && s.rfind(" ", 0) == 0) s.remove_prefix(1);
  else if (s.rfind(": ", 0) == 0) s.remove_prefix(2);
  else if (s.rfind(" in the journal: ", 0) == 0) s.remove_prefix(17);
  st.text = std::string(s);
  return true;
}

// The summary hook_event.cpp writes last: "event OP SUMMARY in N ms".
bool parse_summary(const LogLine& l, std::string& summary, long& ms) {
  const std::string pre = "event " + l.op + " ";
  if (l.message.rfind(pre, 0) != 0) return false;
  std::string_view rest = std::string_view(l.message).substr(pre.size());
  if (rest.size() < 6 || rest.substr(rest.size() - 3) != " ms") return false;
  size_t in = rest.rfind(" in ");
  if (in == std::string_view::npos) return false;
  std::string_view num = rest.substr(in + 4, rest.size() - 3 - in - 4);
  if (!all_digits(num) || num.size() > 12) return false;
  summary = std::string(rest.substr(0, in));
  ms = std::stol(std::string(num));
  return true;
}

bool is_begin(const LogLine& l) {
  return l.message.rfind("event " + l.op + " ", 0) == 0 && l.message.size() > 1 && l.message.back() == ')' &&
         l.message.find(" (vm ") != std::string::npos;
}

std::string classify(const std::string& summary) {
  auto starts = [&](const char* p) { return summary.rfind(p, 0) == 0; };
  if (summary.empty()) return "unfinished";
  if (starts("refused")) return "refused";
  if (starts("FAILED")) return "failed";
  if (starts("INCOMPLETE") || starts("NOT DONE")) return "incomplete";
  return "ok";
}

// An event that no summary closes: the hook was killed, or the verb (restore) writes none.
void finish_without_summary(LogEvent& e) {
  if (e.op == "restore") {
    bool failed = std::any_of(e.undos.begin(), e.undos.end(), [](const LogStep& u) { return u.status == "FAILED" || u.status == "kept"; });
    e.result = failed ? "incomplete" : "ok";
    e.host_restored = failed ? 0 : 1;
    e.summary = failed ? "INCOMPLETE (gpuhook restore)" : "done (gpuhook restore)";
  } else {
    e.result = "unfinished";
  }
}

void add_line(LogEvent& e, const LogLine& l) {
  if (e.lines.empty()) e.start = l.time;
  e.end = l.time;
  e.lines.push_back(l);
  LogStep st;
  if (parse_step(l.message, st)) e.steps.push_back(st);
  else if (parse_undo(l.message, st)) e.undos.push_back(st);
  constexpr std::string_view kBack = "release check: the host is back", kNotBack = "release check: NOT BACK: ";
  if (l.message.rfind(kBack, 0) == 0 && e.host_checked != 0) e.host_checked = 1;
  if (l.message.rfind(kNotBack, 0) == 0) {
    e.host_checked = 0;
    e.not_back.push_back(l.message.substr(kNotBack.size()));
  }
  if (l.message.rfind("nothing to restore", 0) == 0) e.nothing_journaled = true;
  if (l.message.rfind("hint: ", 0) == 0) {
    if (e.hint.empty()) e.hint = l.message.substr(6);
  } else if ((l.level == "error" || l.level == "critical") && e.failure.empty()) {
    e.failure = l.message;
  }
}

}  // namespace

bool parse_log_line(std::string_view line, LogLine& out) {
  out = LogLine{};
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view s = line;
  std::string_view time = next_word(s);
  if (time.size() < 19 || time[4] != '-' || time[10] != 'T') return false;
  std::string_view level = next_word(s);
  static const char* const kLevels[] = {"trace", "debug", "info", "warning", "error", "critical"};
  if (std::none_of(std::begin(kLevels), std::end(kLevels), [&](const char* k) { return level == k; })) return false;
  // The message starts after the padding: "%-5l %v".
  size_t b = s.find_first_not_of(' ');
  s = b == std::string_view::npos ? std::string_view{} : s.substr(b);
  out.time = std::string(time);
  out.level = std::string(level);
  // "[vm op pid] ": the VM name may hold spaces and "] "; op and pid never do.
  if (s.rfind("[", 0) == 0) {
    for (size_t close = s.find("] "); close != std::string_view::npos; close = s.find("] ", close + 1)) {
      std::string_view tag = s.substr(1, close - 1);
      size_t sp2 = tag.rfind(' ');
      if (sp2 == std::string_view::npos || sp2 == 0) continue;
      size_t sp1 = tag.rfind(' ', sp2 - 1);
      if (sp1 == std::string_view::npos || sp1 == 0) continue;
      std::string_view pid = tag.substr(sp2 + 1), op = tag.substr(sp1 + 1, sp2 - sp1 - 1);
      if (!all_digits(pid) || pid.size() > 9 || op.empty()) continue;
      out.vm = std::string(tag.substr(0, sp1));
      out.op = std::string(op);
      out.pid = std::stol(std::string(pid));
      s.remove_prefix(close + 2);
      break;
    }
  }
  out.message = std::string(s);
  return true;
}

std::vector<LogEvent> group_events(const std::vector<LogLine>& lines) {
  std::vector<LogEvent> events;
  std::map<std::string, size_t> open;  // "vm\nop\npid" -> index in events
  for (const auto& l : lines) {
    if (l.op.empty()) continue;
    std::string key = l.vm + "\n" + l.op + "\n" + std::to_string(l.pid);
    auto it = open.find(key);
    if (it != open.end() && is_begin(l)) {  // the same pid again: the earlier one never finished
      finish_without_summary(events[it->second]);
      open.erase(it);
      it = open.end();
    }
    if (it == open.end()) {
      LogEvent e;
      e.vm = l.vm;
      e.op = l.op;
      e.pid = l.pid;
      events.push_back(std::move(e));
      it = open.emplace(key, events.size() - 1).first;
    }
    LogEvent& e = events[it->second];
    std::string summary;
    long ms = -1;
    if (parse_summary(l, summary, ms) && !is_begin(l)) {
      if (e.lines.empty()) e.start = l.time;
      e.end = l.time;
      e.lines.push_back(l);
      e.summary = summary;
      e.duration_ms = ms;
      e.result = classify(summary);
      if (e.op == "release") e.host_restored = e.result == "ok" ? 1 : 0;
      open.erase(it);
      continue;
    }
    add_line(e, l);
  }
  for (const auto& [key, idx] : open) finish_without_summary(events[idx]);
  return events;
}

std::vector<std::string> log_files(const std::string& dir) {
  return {dir + "/gpuhook.3.log", dir + "/gpuhook.2.log", dir + "/gpuhook.1.log", dir + "/gpuhook.log"};
}

namespace {

void print_event(const LogEvent& e, std::ostream& out) {
  out << "== " << e.vm << " " << e.op << " (pid " << e.pid << ") " << e.start << ": ";
  if (e.result == "unfinished") out << "UNFINISHED: no summary line (the hook was killed, or is still running)";
  else out << e.summary;
  if (e.duration_ms >= 0) out << ", " << e.duration_ms << " ms";
  out << "\n";
  for (const auto& l : e.lines) {
    LogStep st;
    bool step = parse_step(l.message, st) || parse_undo(l.message, st);
    std::string summary;
    long ms;
    if (parse_summary(l, summary, ms) || is_begin(l)) continue;
    // Steps and undos always; otherwise what is worth a person's attention.
    if (step || l.level != "info" || l.message.rfind("note: ", 0) == 0 || l.message.rfind("restoring ", 0) == 0 ||
        l.message.rfind("nothing to restore", 0) == 0)
      out << "   " << (l.level == "error" ? "! " : l.level == "warning" ? "~ " : "  ") << l.message << "\n";
  }
  if (e.result == "refused" || e.result == "failed" || e.result == "incomplete") {
    if (!e.failure.empty()) out << "   why: " << e.failure << "\n";
    if (!e.hint.empty()) out << "   what to do: " << e.hint << "\n";
  }
  if (e.host_restored == 1 && e.nothing_journaled && e.undos.empty())
    out << "   host restored: nothing to restore (no journal: the prepare changed nothing, or a release already ran)\n";
  else if (e.host_restored == 1 && e.host_checked == 1)
    out << "   host restored: yes, every journaled step undone, and checked: the host is back as the journal says\n";
  else if (e.host_restored == 1 && e.host_checked == 0)
    out << "   host restored: every step undone, but the check found " << e.not_back.size()
        << " thing(s) NOT BACK (above): `gpuhook status`\n";
  else if (e.host_restored == 1) out << "   host restored: yes, every journaled step was undone (no check logged)\n";
  else if (e.host_restored == 0)
    out << "   host restored: NO, the journal keeps what is left: `gpuhook status`, then `gpuhook restore " << e.vm
        << "`\n";
}

void print_json_line(const LogLine& l, std::ostream& out) {
  out << "{\"time\":" << json_str(l.time) << ",\"level\":" << json_str(l.level) << ",\"vm\":" << json_str(l.vm)
      << ",\"op\":" << json_str(l.op) << ",\"pid\":" << l.pid << ",\"message\":" << json_str(l.message) << "}";
}

void print_steps_json(const std::vector<LogStep>& v, bool undo, std::ostream& out) {
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& s = v[i];
    out << (i ? "," : "") << "{\"n\":" << s.n << (undo ? ",\"kind\":" + json_str(s.kind) : "")
        << ",\"status\":" << json_str(s.status) << ",\"ms\":" << (s.ms < 0 ? "null" : std::to_string(s.ms))
        << ",\"text\":" << json_str(s.text) << "}";
  }
  out << "]";
}

void print_event_json(const LogEvent& e, std::ostream& out) {
  auto opt = [](const std::string& s) { return s.empty() ? std::string("null") : json_str(s); };
  out << "{\"vm\":" << json_str(e.vm) << ",\"op\":" << json_str(e.op) << ",\"pid\":" << e.pid
      << ",\"start\":" << json_str(e.start) << ",\"end\":" << json_str(e.end) << ",\"result\":" << json_str(e.result)
      << ",\"summary\":" << opt(e.summary) << ",\"duration_ms\":" << (e.duration_ms < 0 ? "null" : std::to_string(e.duration_ms))
      << ",\"steps\":";
  print_steps_json(e.steps, false, out);
  out << ",\"undos\":";
  print_steps_json(e.undos, true, out);
  out << ",\"failure\":" << opt(e.failure) << ",\"hint\":" << opt(e.hint) << ",\"host_restored\":"
      << (e.host_restored < 0 ? "null" : e.host_restored ? "true" : "false") << ",\"host_checked\":"
      << (e.host_checked < 0 ? "null" : e.host_checked ? "true" : "false") << ",\"not_back\":[";
  for (size_t i = 0; i < e.not_back.size(); ++i) out << (i ? "," : "") << json_str(e.not_back[i]);
  out << "],\"lines\":[";
  for (size_t i = 0; i < e.lines.size(); ++i) {
    if (i) out << ",";
    print_json_line(e.lines[i], out);
  }
  out << "]}";
}

// Complete lines of `text` from `from`; returns the offset after the last complete line.
size_t take_lines(const std::string& text, size_t from, std::vector<LogLine>& into) {
  size_t pos = from;
  for (;;) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) return pos;
    LogLine l;
    if (parse_log_line(std::string_view(text).substr(pos, nl - pos), l)) into.push_back(std::move(l));
    pos = nl + 1;
  }
}

}  // namespace

int verb_log(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  std::string vm = inv.args.empty() ? "" : inv.args[0];
  if (!vm.empty()) {
    if (auto why = vm_name_problem(vm); !why.empty()) {
      err << "gpuhook: refusing VM name: " << why << "\n";
      return 2;
    }
  }
  // The log directory the hook writes to: the global config's, else the default.
  ConfigErrors ge;
  auto g = load_global(app.host.fs, kGlobalConfig, &ge);
  std::string dir = g ? g->log_dir : GlobalConfig{}.log_dir;
  if (!g) err << "gpuhook: " << kGlobalConfig << " is invalid; reading the default log directory " << dir << "\n";
  std::vector<LogLine> lines;
  bool any_file = false;
  const auto files = log_files(dir);
  size_t current_size = 0;
  for (const auto& f : files) {
    auto text = app.host.fs.read(f);
    if (!text) {
      if (app.host.fs.stat(f).type != FileType::missing) {
        err << "gpuhook: cannot read " << f << ": " << text.error().message()
            << "\n  what to do: the log is root's (mode 0640): sudo gpuhook log\n";
        return 1;
      }
      continue;
    }
    any_file = true;
    size_t end = take_lines(*text, 0, lines);
    if (&f == &files.back()) current_size = end;
  }
  auto wanted = [&](const LogLine& l) { return !l.op.empty() && (vm.empty() || l.vm == vm); };
  std::vector<LogLine> mine;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(mine), wanted);
  std::vector<LogEvent> events = group_events(mine);
  size_t n = inv.events == 0 ? events.size() : std::min(events.size(), static_cast<size_t>(inv.events));
  std::vector<LogEvent> shown(events.end() - static_cast<long>(n), events.end());

  if (inv.json) {
    out << "{\"events\":[";
    for (size_t i = 0; i < shown.size(); ++i) {
      if (i) out << ",";
      print_event_json(shown[i], out);
    }
    out << "]}\n";
  } else {
    for (const auto& e : shown) print_event(e, out);
  }
  out.flush();
  if (!inv.follow) {
    if (!shown.empty()) return 0;
    if (!any_file)
      err << "gpuhook: no log file in " << dir << " (" << files.back() << " and its rotated files): "
          << "gpuhook has not run an event for a VM with a profile yet, or [log] dir points elsewhere\n";
    else
      err << "gpuhook: no event " << (vm.empty() ? "" : "of VM " + vm + " ") << "in " << files.back()
          << " and its rotated files" << (vm.empty() ? "" : "; `gpuhook log` shows every VM's") << "\n";
    return 1;
  }

  // --follow: poll the current file; a file that shrank was rotated: read it again from the start.
  std::string cur = files.back();
  size_t off = current_size;
  std::string last_key;
  for (;;) {
    app.host.clock.sleep_ms(200);
    FileInfo st = app.host.fs.stat(cur);
    if (st.type != FileType::regular) continue;
    if (static_cast<size_t>(st.size) == off) continue;
    if (static_cast<size_t>(st.size) < off) off = 0;
    auto text = app.host.fs.read(cur);
    if (!text) continue;
    if (text->size() < off) off = 0;
    std::vector<LogLine> fresh;
    off = take_lines(*text, off, fresh);
    for (const auto& l : fresh) {
      if (!wanted(l)) continue;
      if (inv.json) {
        print_json_line(l, out);
        out << "\n";
        continue;
      }
      std::string key = l.vm + " " + l.op + " (pid " + std::to_string(l.pid) + ")";
      if (key != last_key) out << "== " << key << " " << l.time << "\n";
      last_key = key;
      out << "   " << (l.level == "error" ? "! " : l.level == "warning" ? "~ " : "  ") << l.message << "\n";
    }
    out.flush();
  }
}

}  // namespace gpuhook
