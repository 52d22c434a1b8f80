#include <cctype>

#include "steps/steps.h"

namespace gpuhook {

void put_argv(Record& r, const std::string& prefix, const std::vector<std::string>& argv) {
  r[prefix + ".n"] = std::to_string(argv.size());
  for (size_t i = 0; i < argv.size(); ++i) r[prefix + "." + std::to_string(i)] = argv[i];
}

std::vector<std::string> get_argv(const Record& r, const std::string& prefix) {
  std::vector<std::string> v;
  auto it = r.find(prefix + ".n");
  if (it == r.end()) return v;
  int n = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9' || n > 1000) return {};
    n = n * 10 + (c - '0');
  }
  for (int i = 0; i < n; ++i) {
    auto a = r.find(prefix + "." + std::to_string(i));
    if (a == r.end()) return {};
    v.push_back(a->second);
  }
  return v;
}

std::string field(const Record& r, const std::string& key) {
  auto it = r.find(key);
  return it == r.end() ? "" : it->second;
}

Status check_journal_name(const Record& r, const std::string& key, bool may_be_empty) {
  std::string v = field(r, key);
  bool ok = v.size() <= 255 && (may_be_empty || !v.empty()) && (v.empty() || (v[0] != '-' && v[0] != '.'));
  for (unsigned char c : v)
    ok = ok && (std::isalnum(c) || c == '_' || c == '.' || c == ':' || c == '@' || c == '\\' || c == '+' || c == '-');
  if (ok) return Status::success();
  Error e;
  e.what = "refusing the journal record: " + key + " '" + escape_value(v.substr(0, 80)) + "' is not a valid name";
  e.why = "a journal written by gpuhook never holds this; the file was damaged or edited";
  e.hint = "restore this step by hand, then remove the journal (see `gpuhook status`)";
  return e;
}

Result<RunResult> run_checked(StepContext& ctx, const std::vector<std::string>& argv, Millis timeout_ms,
                              const std::string& what) {
  Deadline d = ctx.deadline.sub(timeout_ms);
  ctx.log.debug("run: " + format_argv(argv));
  auto r = ctx.host.runner.run(argv, d);
  if (!r) {
    Error e = r.error();
    e.what = what + ": " + e.what;
    return e;
  }
  if (!r->success()) {
    Error e;
    e.what = what;
    e.why = format_argv(argv) + ": " + r->summary();
    e.timed_out = r->timed_out;
    return e;
  }
  return r;
}

bool systemd_running(Fs& fs) { return fs.is_dir("/run/systemd/system"); }

}  // namespace gpuhook
