// The journald sink (host/journald.h): the native protocol, written by hand.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "host/journald.h"

namespace gpuhook {

JournalTag parse_journal_tag(std::string_view tag) {
  JournalTag t;
  while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
  if (tag.size() < 2 || tag.front() != '[' || tag.back() != ']') return t;
  tag = tag.substr(1, tag.size() - 2);
  size_t sp2 = tag.rfind(' ');
  if (sp2 == std::string_view::npos || sp2 == 0) return t;
  size_t sp1 = tag.rfind(' ', sp2 - 1);
  if (sp1 == std::string_view::npos) return t;
  t.vm = std::string(tag.substr(0, sp1));
  t.event = std::string(tag.substr(sp1 + 1, sp2 - sp1 - 1));
  t.pid = std::string(tag.substr(sp2 + 1));
  return t;
}

namespace {

int priority(Level l) {
  switch (l) {
    case Level::debug: return 7;
    case Level::info: return 6;
    case Level::warn: return 4;
    case Level::error: return 3;
    case Level::off: break;
  }
  return 6;
}

void field(std::string& d, std::string_view key, std::string_view value) {
  if (value.find('\n') == std::string_view::npos) {
    d.append(key).append("=").append(value).append("\n");
    return;
  }
  d.append(key).append("\n");
  uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) d.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  d.append(value).append("\n");
}

// "step 3 ok ...", "step 3 FAILED ...", "undo 3 pci.vfio ok" -> "3"
std::string step_of(std::string_view msg) {
  for (std::string_view p : {"step ", "undo "}) {
    if (msg.rfind(p, 0) != 0) continue;
    size_t i = p.size(), j = i;
    while (j < msg.size() && j - i < 9 && std::isdigit(static_cast<unsigned char>(msg[j]))) ++j;
    if (j > i && (j == msg.size() || msg[j] == ' ')) return std::string(msg.substr(i, j - i));
  }
  return "";
}

}  // namespace

std::string journald_datagram(Level lvl, const JournalTag& t, std::string_view tag, std::string_view msg) {
  std::string d;
  field(d, "SYSLOG_IDENTIFIER", "gpuhook");
  field(d, "PRIORITY", std::to_string(priority(lvl)));
  field(d, "SYSLOG_FACILITY", "3");  // daemon, as the syslog sink
  std::string m(tag);
  m.append(msg);
  field(d, "MESSAGE", m);
  if (!t.vm.empty()) field(d, "GPUHOOK_VM", t.vm);
  if (!t.event.empty()) field(d, "GPUHOOK_EVENT", t.event);
  if (!t.pid.empty()) field(d, "GPUHOOK_PID", t.pid);
  if (auto s = step_of(msg); !s.empty()) field(d, "GPUHOOK_STEP", s);
  return d;
}

Journald::Journald(std::string socket_path) : path_(std::move(socket_path)) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

Journald::~Journald() {
  if (fd_ >= 0) ::close(fd_);
}

bool Journald::running(const std::string& socket_path) {
  struct stat st {};
  return ::lstat(socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool Journald::send(const std::string& datagram) {
  if (fd_ < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path_.size() >= sizeof a.sun_path) return false;
  std::memcpy(a.sun_path, path_.data(), path_.size());
  // Non-blocking: a journald that does not read must not hold up libvirtd's event. A line too big
  // for one datagram (EMSGSIZE; journald takes large ones only through a memfd) is not sent.
  ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                       reinterpret_cast<const sockaddr*>(&a), sizeof a);
  return n == static_cast<ssize_t>(datagram.size());
}

}  // namespace gpuhook
