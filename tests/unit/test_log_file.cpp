// The real log file (spdlog): every line must be in the file as soon as it is logged. A hook
// that libvirtd's timeout, the watchdog's _exit or a SIGKILL ends never runs a destructor; lines
// left in a buffer are lost, and they are the ones that say what it had done (found by
// tests/realkernel scenario 9: the SIGKILLed prepare's lines were missing from gpuhook.log).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "host/log.h"

namespace gpuhook {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(LogFile, EveryLineIsInTheFileBeforeTheLoggerGoes) {
  char tmpl[] = "/tmp/gpuhook-logtest.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string file = std::string(tmpl) + "/log/gpuhook.log";
  LogConfig cfg;
  cfg.file = file;
  cfg.syslog = false;
  cfg.tag = "[vm prepare 1] ";
  std::string problem;
  auto log = make_spdlog(cfg, &problem);
  ASSERT_TRUE(problem.empty()) << problem;
  log->info("step 1 ok (5 ms): claim 0000:01:00.0 for VM vm");
  // Read while the logger is alive: what a killed process leaves behind.
  EXPECT_NE(slurp(file).find("[vm prepare 1] step 1 ok"), std::string::npos) << "info line still buffered";
  log->debug("not logged at info level");
  log->info("step 2 ok");
  EXPECT_NE(slurp(file).find("step 2 ok"), std::string::npos);
  EXPECT_EQ(slurp(file).find("not logged"), std::string::npos);
  log.reset();
  ::unlink(file.c_str());
  ::rmdir((std::string(tmpl) + "/log").c_str());
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace gpuhook
