// The one file that uses spdlog.
#include <fcntl.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "host/fs.h"
#include "host/journald.h"
#include "host/log.h"

namespace gpuhook {

bool parse_level(std::string_view s, Level& out) {
  if (s == "debug" || s == "trace") out = Level::debug;
  else if (s == "info") out = Level::info;
  else if (s == "warn" || s == "warning") out = Level::warn;
  else if (s == "error") out = Level::error;
  else if (s == "off") out = Level::off;
  else return false;
  return true;
}

namespace {

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

class SpdLog : public Log {
 public:
  SpdLog(std::shared_ptr<spdlog::logger> l, std::string tag, std::unique_ptr<Journald> journald)
      : l_(std::move(l)), tag_(std::move(tag)), jtag_(parse_journal_tag(tag_)), journald_(std::move(journald)) {}
  ~SpdLog() override { l_->flush(); }
  // Every line goes to the file at once: a hook ended by SIGKILL, libvirtd's timeout or the
  // watchdog's _exit() runs no destructor, and the lines it buffered would be the ones saying
  // what it had done. An event writes a few dozen lines: one write(2) each is nothing.
  void write(Level lvl, std::string_view msg) override {
    l_->log(to_spd(lvl), "{}{}", tag_, msg);
    l_->flush();
    // journald, when it runs (instead of the syslog sink): the line with its fields. A line it does
    // not take (its socket full or gone) goes to syslog(3), which journald or a syslog daemon reads.
    if (journald_ && lvl >= Level::info && l_->should_log(to_spd(lvl)) &&
        !journald_->send(journald_datagram(lvl, jtag_, tag_, msg))) {
      int prio = lvl == Level::error ? LOG_ERR : lvl == Level::warn ? LOG_WARNING : LOG_INFO;
      ::openlog("gpuhook", LOG_PID, LOG_DAEMON);
      ::syslog(prio, "%s%.*s", tag_.c_str(), static_cast<int>(msg.size()), msg.data());
    }
  }

 private:
  std::shared_ptr<spdlog::logger> l_;
  std::string tag_;
  JournalTag jtag_;
  std::unique_ptr<Journald> journald_;
};

// Creates the directory (0750) and the file (0640) ourselves, never through a symlink, so that
// spdlog only ever opens a file we made.
bool prepare_file(const std::string& file, std::string* problem) {
  std::string dir = dirname_of(file);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    std::string cur;
    for (size_t i = 1; i <= dir.size(); ++i) {
      if (i == dir.size() || dir[i] == '/') {
        cur = dir.substr(0, i);
        ::mkdir(cur.c_str(), 0750);
      }
    }
  } else if (!S_ISDIR(st.st_mode)) {
    if (problem) *problem = dir + " is not a directory";
    return false;
  }
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (problem) *problem = "cannot open " + file + ": " + std::strerror(errno);
    return false;
  }
  ::fchmod(fd, 0640);
  ::close(fd);
  return true;
}

}  // namespace

std::unique_ptr<Log> make_spdlog(const LogConfig& cfg, std::string* problem) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!cfg.file.empty() && prepare_file(cfg.file, problem)) {
    try {
      auto f = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(cfg.file, 1024 * 1024, 3);
      f->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %-5l %v");
      sinks.push_back(f);
    } catch (const std::exception& e) {
      if (problem) *problem = e.what();
    }
  }
  std::unique_ptr<Journald> journald;
  if (cfg.syslog && !cfg.journal_socket.empty() && Journald::running(cfg.journal_socket))
    journald = std::make_unique<Journald>(cfg.journal_socket);
  else if (cfg.syslog) {
    auto s = std::make_shared<spdlog::sinks::syslog_sink_mt>("gpuhook", LOG_PID, LOG_DAEMON, false);
    s->set_pattern("%v");
    s->set_level(spdlog::level::info);
    sinks.push_back(s);
  }
  auto l = std::make_shared<spdlog::logger>("gpuhook", sinks.begin(), sinks.end());
  l->set_level(to_spd(cfg.level));
  l->flush_on(spdlog::level::warn);
  return std::make_unique<SpdLog>(std::move(l), cfg.tag, std::move(journald));
}

}  // namespace gpuhook
