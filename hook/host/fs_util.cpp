#include "host/fs.h"

namespace gpuhook {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\n' || s[b] == '\t' || s[b] == '\r' || s[b] == '\0')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\n' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\0')) --e;
  return std::string(s.substr(b, e - b));
}

std::string read_attr(Fs& fs, const std::string& path, const std::string& fallback) {
  auto r = fs.read(path);
  if (!r) return fallback;
  std::string_view v = *r;
  auto nl = v.find('\n');
  if (nl != std::string_view::npos) v = v.substr(0, nl);
  return trim(v);
}

std::string basename_of(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto p = path.rfind('/');
  return std::string(p == std::string_view::npos ? path : path.substr(p + 1));
}

std::string dirname_of(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto p = path.rfind('/');
  if (p == std::string_view::npos) return ".";
  if (p == 0) return "/";
  return std::string(path.substr(0, p));
}

std::string link_name(Fs& fs, const std::string& path) {
  auto r = fs.readlink(path);
  if (!r) return "";
  return basename_of(*r);
}

std::string start_time_of(Fs& fs, int pid) {
  if (pid <= 0) return "";
  auto st = fs.read("/proc/" + std::to_string(pid) + "/stat");
  if (!st) return "";
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields follow the last ')'.
  size_t rp = st->rfind(')');
  if (rp == std::string::npos) return "";
  size_t i = rp + 1;
  if (i + 1 < st->size() && ((*st)[i + 1] == 'Z' || (*st)[i + 1] == 'X')) return "";  // it has exited
  for (int field = 3; i < st->size(); ++field) {
    while (i < st->size() && (*st)[i] == ' ') ++i;
    size_t b = i;
    while (i < st->size() && (*st)[i] != ' ' && (*st)[i] != '\n') ++i;
    if (field == 22) return b < i ? st->substr(b, i - b) : "";
  }
  return "";
}

}  // namespace gpuhook
