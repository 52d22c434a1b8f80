#include "host/runner.h"

namespace gpuhook {

std::string RunResult::summary() const {
  std::string s;
  if (timed_out) s = "killed at its deadline";
  else if (signaled) s = "killed by a signal";
  else s = "exit " + std::to_string(exit_code);
  std::string e = err.empty() ? out : err;
  auto nl = e.find('\n');
  if (nl != std::string::npos) e.resize(nl);
  if (e.size() > 200) e.resize(200);
  if (!e.empty()) s += ": " + e;
  return s;
}

std::string format_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    if (plain) s += a;
    else {
      s += '\'';
      for (char c : a) s += (c == '\'') ? std::string("'\\''") : std::string(1, c);
      s += '\'';
    }
  }
  return s;
}

}  // namespace gpuhook
