// The journald sink (host/log_journald.cpp): journald's native protocol, checked against a
// datagram socket of our own standing in for /run/systemd/journal/socket (the format is the
// documented one: https://systemd.io/JOURNAL_NATIVE_PROTOCOL/). tests/journald/fields.sh does
// the same with a real systemd-journald and journalctl.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "host/journald.h"
#include "host/log.h"

namespace gpuhook {
namespace {

// Decodes one datagram: KEY=VALUE\n, or KEY\n<le64 length><value>\n.
std::map<std::string, std::string> decode(const std::string& d) {
  std::map<std::string, std::string> f;
  size_t p = 0;
  while (p < d.size()) {
    size_t nl = d.find('\n', p);
    if (nl == std::string::npos) break;
    std::string line = d.substr(p, nl - p);
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      f[line.substr(0, eq)] = line.substr(eq + 1);
      p = nl + 1;
      continue;
    }
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(d[nl + 1 + i])) << (8 * i);
    f[line] = d.substr(nl + 9, n);
    EXPECT_EQ(d[nl + 9 + n], '\n');
    p = nl + 9 + n + 1;
  }
  return f;
}

struct FakeJournald {
  std::string dir, path;
  int fd = -1;
  FakeJournald() {
    char tmpl[] = "/tmp/gpuhook-journald.XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/socket";
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~FakeJournald() {
    ::close(fd);
    ::unlink(path.c_str());
    (void)!std::system(("rm -rf " + dir).c_str());
  }
  std::vector<std::map<std::string, std::string>> received() {
    std::vector<std::map<std::string, std::string>> v;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      v.push_back(decode(std::string(buf, static_cast<size_t>(n))));
    }
    return v;
  }
};

TEST(Journald, EachLineGoesToJournaldWithTheVmEventStepAndPriorityFields) {
  FakeJournald j;
  LogConfig cfg;
  cfg.file = j.dir + "/log/gpuhook.log";
  cfg.syslog = true;
  cfg.journal_socket = j.path;
  cfg.tag = "[win 11 prepare 4242] ";  // a VM name with a space
  std::string problem;
  auto log = make_spdlog(cfg, &problem);
  ASSERT_TRUE(problem.empty()) << problem;
  log->info("event prepare begin - (vm win 11)");
  log->info("step 3 ok (5 ms): bind 0000:01:00.0 to vfio-pci");
  log->debug("a debug line: below the level, sent nowhere");
  log->error("undo 12 pci.vfio FAILED (3 ms): the driver did not come back");
  log->warn("two\nlines");
  auto got = j.received();
  ASSERT_EQ(got.size(), 4u);
  for (const auto& f : got) {
    EXPECT_EQ(f.at("SYSLOG_IDENTIFIER"), "gpuhook");
    EXPECT_EQ(f.at("GPUHOOK_VM"), "win 11");
    EXPECT_EQ(f.at("GPUHOOK_EVENT"), "prepare");
    EXPECT_EQ(f.at("GPUHOOK_PID"), "4242");
  }
  EXPECT_EQ(got[0].at("PRIORITY"), "6");
  EXPECT_EQ(got[0].count("GPUHOOK_STEP"), 0u) << "not a step line";
  EXPECT_EQ(got[1].at("MESSAGE"), "[win 11 prepare 4242] step 3 ok (5 ms): bind 0000:01:00.0 to vfio-pci");
  EXPECT_EQ(got[1].at("GPUHOOK_STEP"), "3");
  EXPECT_EQ(got[2].at("PRIORITY"), "3");
  EXPECT_EQ(got[2].at("GPUHOOK_STEP"), "12");
  EXPECT_EQ(got[3].at("PRIORITY"), "4");
  EXPECT_EQ(got[3].at("MESSAGE"), "[win 11 prepare 4242] two\nlines");  // the binary form
  // The file log is still written, line for line.
  std::ifstream f(cfg.file);
  std::stringstream s;
  s << f.rdbuf();
  EXPECT_NE(s.str().find("[win 11 prepare 4242] step 3 ok (5 ms)"), std::string::npos) << s.str();
  EXPECT_NE(s.str().find("undo 12 pci.vfio FAILED"), std::string::npos);
}

TEST(Journald, WithoutItsSocketOrWithSyslogOffNothingIsSentThere) {
  FakeJournald j;
  LogConfig cfg;
  cfg.syslog = false;  // [log] syslog = false: neither journald nor syslog
  cfg.journal_socket = j.path;
  cfg.tag = "[a prepare 1] ";
  auto log = make_spdlog(cfg, nullptr);
  log->info("step 1 ok (1 ms): x");
  EXPECT_TRUE(j.received().empty());
  EXPECT_FALSE(Journald::running(j.dir + "/absent"));
  EXPECT_FALSE(Journald::running(j.dir));  // a directory is not journald's socket
  EXPECT_TRUE(Journald::running(j.path));
}

TEST(Journald, TagsAndStepNumbers) {
  JournalTag t = parse_journal_tag("[a b c release 17] ");
  EXPECT_EQ(t.vm, "a b c");
  EXPECT_EQ(t.event, "release");
  EXPECT_EQ(t.pid, "17");
  EXPECT_TRUE(parse_journal_tag("").vm.empty());
  auto d = decode(journald_datagram(Level::info, t, "[a b c release 17] ", "undo 4 claim ok (0 ms)"));
  EXPECT_EQ(d.at("GPUHOOK_STEP"), "4");
  d = decode(journald_datagram(Level::info, t, "", "steps 4 ok"));
  EXPECT_EQ(d.count("GPUHOOK_STEP"), 0u);
}

}  // namespace
}  // namespace gpuhook
