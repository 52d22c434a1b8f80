// Findings of `doctor` and `check`: what is wrong or worth knowing, on which object, and the next
// step. The JSON form is part of the documented, stable output (README: setup commands).
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace gpuhook {

struct Finding {
  std::string id;        // stable identifier ("hostdev-missing")
  std::string severity;  // "error", "warning" or "info"
  std::string message;   // what was found, on which object, why it matters
  std::string fix;       // the next step, one line
};

inline Finding error_finding(std::string id, std::string message, std::string fix) {
  return {std::move(id), "error", std::move(message), std::move(fix)};
}
inline Finding warning_finding(std::string id, std::string message, std::string fix) {
  return {std::move(id), "warning", std::move(message), std::move(fix)};
}
inline Finding info_finding(std::string id, std::string message, std::string fix) {
  return {std::move(id), "info", std::move(message), std::move(fix)};
}

bool has_errors(const std::vector<Finding>& f);
// [{"id":...,"severity":...,"message":...,"fix":...},...]
void print_findings_json(std::ostream& out, const std::vector<Finding>& f);
// "error   message\n        fix: ...\n" per finding, errors first.
void print_findings_human(std::ostream& out, const std::vector<Finding>& f, const std::string& indent = "  ");

}  // namespace gpuhook
