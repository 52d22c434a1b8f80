#include "app/findings.h"

#include "app/verbs.h"

namespace gpuhook {

bool has_errors(const std::vector<Finding>& f) {
  for (const auto& x : f)
    if (x.severity == "error") return true;
  return false;
}

void print_findings_json(std::ostream& out, const std::vector<Finding>& f) {
  out << "[";
  for (size_t i = 0; i < f.size(); ++i)
    out << (i ? "," : "") << "{\"id\":" << json_str(f[i].id) << ",\"severity\":" << json_str(f[i].severity)
        << ",\"message\":" << json_str(f[i].message) << ",\"fix\":" << json_str(f[i].fix) << "}";
  out << "]";
}

void print_findings_human(std::ostream& out, const std::vector<Finding>& f, const std::string& indent) {
  for (const char* sev : {"error", "warning", "info"})
    for (const auto& x : f) {
      if (x.severity != sev) continue;
      std::string tag = x.severity;
      tag.resize(8, ' ');
      out << indent << tag << x.message << "  [" << x.id << "]\n";
      if (!x.fix.empty()) out << indent << "        next: " << x.fix << "\n";
    }
}

}  // namespace gpuhook
