// Log: where the hook tells a person what it did. The engine and steps write here; the real
// implementation (log_spdlog.cpp) writes /var/log/gpuhook/gpuhook.log and syslog/journald.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace gpuhook {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
bool parse_level(std::string_view s, Level& out);

class Log {
 public:
  virtual ~Log() = default;
  virtual void write(Level lvl, std::string_view msg) = 0;
  void debug(std::string_view m) { write(Level::debug, m); }
  void info(std::string_view m) { write(Level::info, m); }
  void warn(std::string_view m) { write(Level::warn, m); }
  void error(std::string_view m) { write(Level::error, m); }
};

class NullLog : public Log {
 public:
  void write(Level, std::string_view) override {}
};

// Keeps lines in memory (tests, and `plan`).
class MemoryLog : public Log {
 public:
  void write(Level lvl, std::string_view msg) override { lines.push_back({lvl, std::string(msg)}); }
  struct Line {
    Level level;
    std::string text;
  };
  std::vector<Line> lines;
  bool contains(std::string_view s) const {
    for (const auto& l : lines)
      if (l.text.find(s) != std::string::npos) return true;
    return false;
  }
  std::string text() const {
    std::string t;
    for (const auto& l : lines) t += l.text + "\n";
    return t;
  }
};

struct LogConfig {
  std::string file;        // absolute path of the log file (already under --root)
  Level level = Level::info;
  bool syslog = true;       // journald with fields when it runs (journal_socket exists), else syslog
  std::string journal_socket = "/run/systemd/journal/socket";
  std::string tag;         // prefix of every line: "[win11 prepare 1234]"
};

// spdlog logger: rotating file (0640, directory created 0750 on demand) + journald (host/journald.h)
// when its socket exists, else syslog, as "gpuhook".
// On failure to open the file it still logs to syslog and returns the reason in *problem.
std::unique_ptr<Log> make_spdlog(const LogConfig& cfg, std::string* problem);

}  // namespace gpuhook
