// doctor, groups and ids against every real machine in tests/data/real (listings people posted),
// each turned into a sysfs tree by tests/support. The expectations below were read off each
// listing by hand (groups, the discrete GPU, its class, isolation and blockers, subsystem ids and
// their decimal values); the groups are also compared with a second, naive reading of the raw file
// that shares no code with the generator. Then the same verbs run through the real binary with
// --root on a tree written by make-sysfs-tree, and must print the same JSON.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "support/cli.h"

namespace gpuhook::fixtures {
namespace {

namespace json = boost::json;

struct Gpu {
  std::string address, ids, cls;  // "0000:01:00.0", "10de:1c20", "0300"
  int group;                      // -1: no IOMMU group in the listing
  bool discrete, isolated;
  std::vector<std::string> blockers;
  std::string subsystem;          // "1558:8550" or "" when the listing does not show it
  long sub_vendor_dec = -1, sub_device_dec = -1;  // the same in decimal, worked out by hand
  std::vector<std::string> functions = {};  // the card's functions (checked when given)
  bool bmc = false;                         // a server BMC's display
};

struct Machine {
  std::string file;
  int groups, devices;
  std::vector<Gpu> gpus;  // every display-class device of the listing
  int doctor_rc;
};

void PrintTo(const Machine& m, std::ostream* os) { *os << m.file; }

const std::vector<Machine>& machines() {
  static const std::vector<Machine> m = {
      {"02-msi-gf72-8re-gtx1060-vga", 11, 17,
       {{"0000:00:02.0", "8086:3e9b", "0300", 2, false, true, {}, ""},
        {"0000:01:00.0", "10de:1c20", "0300", 1, true, true, {}, ""}}, 0},
      {"03-laptop-quadro-k2000m-vga", 15, 19,
       {{"0000:00:02.0", "8086:0166", "0300", 2, false, true, {}, ""},
        {"0000:01:00.0", "10de:0ffb", "0300", 1, true, true, {}, ""}}, 0},
      {"05-desktop-ryzen-radeon-r7-240-single", 20, 39,
       {{"0000:23:00.0", "1002:6613", "0300", 13, true, true, {}, ""}}, 0},
      {"06-desktop-z97-two-hd7970-same-group", 23, 31,
       {{"0000:01:00.0", "1002:6798", "0300", 1, true, false, {"0000:02:00.0", "0000:02:00.1"}, ""},
        {"0000:02:00.0", "1002:6798", "0300", 1, true, false, {"0000:01:00.0", "0000:01:00.1"}, ""}}, 1},
      {"07-desktop-b85-haswell-igpu-gtx970", 14, 19,
       {{"0000:00:02.0", "8086:0412", "0300", 2, false, true, {}, ""},
        {"0000:01:00.0", "10de:13c2", "0300", 1, true, true, {}, ""}}, 0},
      {"09-desktop-ryzen-two-rx580-separate-groups", 24, 44,
       {{"0000:26:00.0", "1002:67df", "0300", 16, true, true, {}, ""},
        {"0000:27:00.0", "1002:67df", "0300", 17, true, true, {}, ""}}, 0},
      {"10-desktop-asrock-z370-uhd630-gt1030", 15, 21,
       {{"0000:00:02.0", "8086:3e92", "0300", 0, false, true, {}, ""},
        {"0000:01:00.0", "10de:1d01", "0300", 2, true, true, {}, ""}}, 0},
      {"12-lenovo-thinkpad-p52-quadro-p1000-vga", 0, 26,
       {{"0000:00:02.0", "8086:3e9b", "0300", -1, false, false, {}, "17aa:225f", 6058, 8799},
        {"0000:01:00.0", "10de:1cbb", "0300", -1, true, false, {}, "17aa:225f", 6058, 8799}}, 1},
      {"14-mechrevo-aurora-z-rtx3050-vga-but-no-mux", 0, 2,
       {{"0000:01:00.0", "10de:25a2", "0300", -1, true, false, {}, "1d05:1178", 7429, 4472}}, 1},
      {"16-lenovo-legion-r720-gtx1050-muxless", 0, 1,
       {{"0000:01:00.0", "10de:1c8d", "0302", -1, true, false, {}, ""}}, 1},
      {"18-asus-tuf-fa506iv-rtx2060-turing-4func-partial", 5, 8,
       {{"0000:01:00.0", "10de:1f15", "0300", 10, true, true, {}, "1043:1e21", 4163, 7713}}, 0},
      {"20-msi-gs70-2od-gtx765m-3d-partial", 6, 10,
       {{"0000:01:00.0", "10de:11e1", "0302", 1, true, true, {}, ""}}, 0},
      {"22-desktop-cometlake-uhd630-gtx1660super-4func-partial", 7, 11,
       {{"0000:00:02.0", "8086:9bc8", "0300", 2, false, true, {}, ""},
        {"0000:01:00.0", "10de:21c4", "0300", 1, true, true, {}, ""}}, 0},
      {"23-lenovo-ideapad5-15itl05-mx450-3d", 0, 1,
       {{"0000:01:00.0", "10de:1f97", "0302", -1, true, false, {}, ""}}, 1},
      {"25-acer-nitro5-an515-51-gtx1050-vga-optimus-excerpt", 0, 1,
       {{"0000:01:00.0", "10de:1c8d", "0300", -1, true, false, {}, "1025:118b", 4133, 4491}}, 1},
      // 26-33: expectations from each file's by-hand header reading (../shared/fixtures/real).
      {"26-b350-plus-r9-390-rx550-chipset-group", 20, 38,
       {{"0000:06:00.0", "1002:699f", "0300", 12, true, false, {"0000:01:00.0", "0000:01:00.1", "0000:03:00.0"}, "", -1, -1,
         {"0000:06:00.0", "0000:06:00.1"}},
        {"0000:07:00.0", "1002:67b1", "0300", 13, true, true, {}, "", -1, -1, {"0000:07:00.0", "0000:07:00.1"}}}, 0},
      {"29-x570-acs-override-rx570-gtx1080-split-functions", 44, 52,
       {{"0000:0a:00.0", "1002:67df", "0300", 33, true, true, {}, "", -1, -1, {"0000:0a:00.0", "0000:0a:00.1"}},
        {"0000:0b:00.0", "10de:1b80", "0300", 35, true, true, {}, "", -1, -1, {"0000:0b:00.0", "0000:0b:00.1"}}}, 0},
      {"30-fujitsu-tx1320m3-server-bmc-vga-only-no-dgpu", 15, 21,
       {{"0000:02:00.0", "102b:0522", "0300", 10, false, true, {}, "", -1, -1, {}, true}}, 1},
      {"31-x570-aorus-pro-5900x-rx5700xt-single-gpu", 32, 45,
       {{"0000:0b:00.0", "1002:731f", "0300", 25, true, true, {}, "", -1, -1, {"0000:0b:00.0", "0000:0b:00.1"}}}, 0},
      {"32-asrock-b550-itx-cezanne-apu-only-acs-override-domain-prefix", 20, 28,
       {{"0000:05:00.0", "1002:1638", "0300", 14, false, true, {}, ""}}, 1},
      {"33-threadripper-1950x-x399-radeon-vii-rx580", 49, 77,
       {{"0000:0d:00.0", "1002:66af", "0300", 20, true, true, {}, "", -1, -1, {"0000:0d:00.0", "0000:0d:00.1"}},
        {"0000:43:00.0", "1002:67df", "0300", 42, true, true, {}, "", -1, -1, {"0000:43:00.0", "0000:43:00.1"}}}, 0},
  };
  return m;
}

std::string path_of(const Machine& m) { return std::string(GPUHOOK_SOURCE_DIR) + "/tests/data/real/" + m.file + ".txt"; }

// A reading of the raw listing that shares nothing with tests/support: "IOMMU Group N <addr>"
// lines, and "IOMMU Group N:" headers with indented addresses below (until a blank or "..." line).
std::map<int, std::set<std::string>> naive_groups(const std::string& text) {
  std::map<int, std::set<std::string>> g;
  static const std::regex one(R"(^IOMMU [Gg]roup (\d+) (?:0000:)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) )");
  static const std::regex head(R"(^IOMMU [Gg]roup (\d+):?\s*$)");
  static const std::regex member(R"(^\s+(?:0000:)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) )");
  std::istringstream in(text);
  std::string line;
  int current = -1;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, one)) g[std::stoi(m[1])].insert("0000:" + std::string(m[2]));
    else if (std::regex_search(line, m, head)) current = std::stoi(m[1]);
    else if (current >= 0 && std::regex_search(line, m, member)) g[current].insert("0000:" + std::string(m[1]));
    else current = -1;
  }
  return g;
}

class RealMachine : public ::testing::TestWithParam<Machine> {
 protected:
  void SetUp() override {
    text = read_text(path_of(GetParam()));
    ASSERT_FALSE(text.empty()) << path_of(GetParam());
    listing = parse_listing(text);
    host = host_from_listing(listing);
  }
  CliResult run(const std::vector<std::string>& args) { return run_cli(host->host(), args); }
  std::string text;
  Listing listing;
  std::unique_ptr<FakeHost> host;
};

TEST_P(RealMachine, TheListingKeepsItsSourceLineAndParsesWithoutContradictions) {
  EXPECT_EQ(text.rfind("# source: ", 0), 0u) << "each copied listing keeps its header, source first";
  EXPECT_TRUE(listing.problems.empty()) << listing.problems.front();
  EXPECT_EQ(static_cast<int>(listing.devices.size()), GetParam().devices);
  // The header's dgpu line names exactly the discrete GPUs expected here.
  std::set<std::string> header, expected;
  std::string dgpu = listing.header.at("dgpu");
  if (dgpu == "none") dgpu.clear();
  for (size_t b = 0; b < dgpu.size();) {
    size_t e = dgpu.find(',', b);
    if (e == std::string::npos) e = dgpu.size();
    header.insert(PciAddress::parse(trim(dgpu.substr(b, e - b)))->str());
    b = e + 1;
  }
  for (const auto& g : GetParam().gpus)
    if (g.discrete) expected.insert(g.address);
  EXPECT_EQ(header, expected);
}

TEST_P(RealMachine, GroupsReproducesTheListingsGroupsSortedNumerically) {
  auto r = run({"--json", "groups"});
  EXPECT_EQ(r.rc, GetParam().groups ? 0 : 1) << r.out << r.err;
  json::value j = json_of(r.out);
  auto naive = naive_groups(text);
  std::map<int, std::set<std::string>> got;
  int previous = -1;
  for (const auto& g : j.at("groups").as_array()) {
    int id = static_cast<int>(g.at("id").as_int64());
    EXPECT_GT(id, previous) << "groups in ascending numeric order";
    previous = id;
    std::string prev_addr;
    for (const auto& d : g.at("devices").as_array()) {
      std::string a(d.at("address").as_string());
      EXPECT_LT(prev_addr, a) << "devices sorted by address within a group";
      prev_addr = a;
      EXPECT_TRUE(std::regex_match(a, std::regex("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]"))) << a;
      EXPECT_TRUE(std::regex_match(std::string(d.at("vendor").as_string()), std::regex("[0-9a-f]{4}")));
      EXPECT_TRUE(std::regex_match(std::string(d.at("class").as_string()), std::regex("[0-9a-f]{4}")));
      EXPECT_TRUE(d.at("driver").is_null() || d.at("driver").is_string());
      got[id].insert(a);
    }
  }
  EXPECT_EQ(got, naive);
  EXPECT_EQ(static_cast<int>(got.size()), GetParam().groups);
  // The human form lists the same groups in the same order.
  auto h = run({"groups"});
  EXPECT_EQ(h.rc, r.rc);
  size_t pos = 0;
  for (const auto& [id, members] : got) {
    auto at = h.out.find("IOMMU group " + std::to_string(id) + ":\n", pos);
    ASSERT_NE(at, std::string::npos) << "group " << id << " in order\n" << h.out;
    pos = at;
  }
}

TEST_P(RealMachine, DoctorFindsEachGpuWithItsClassPlacementIsolationAndBlockers) {
  auto r = run({"doctor", "--json"});
  EXPECT_EQ(r.rc, GetParam().doctor_rc) << r.out;
  json::value j = json_of(r.out);
  EXPECT_EQ(j.at("iommu").at("enabled").as_bool(), GetParam().groups > 0);
  const auto& gpus = j.at("gpus").as_array();
  ASSERT_EQ(gpus.size(), GetParam().gpus.size()) << r.out;
  for (size_t i = 0; i < gpus.size(); ++i) {
    const Gpu& want = GetParam().gpus[i];
    const auto& g = gpus[i];
    SCOPED_TRACE(want.address);
    EXPECT_EQ(g.at("address").as_string(), want.address);
    EXPECT_EQ(std::string(g.at("vendor").as_string()) + ":" + std::string(g.at("device").as_string()), want.ids);
    EXPECT_EQ(g.at("class").as_string(), want.cls);
    if (want.group < 0) EXPECT_TRUE(g.at("iommu_group").is_null());
    else EXPECT_EQ(g.at("iommu_group").as_int64(), want.group);
    EXPECT_EQ(g.at("discrete").as_bool(), want.discrete) << g.at("placement").as_string();
    EXPECT_TRUE(g.at("placement_certain").as_bool()) << g.at("placement").as_string();
    EXPECT_EQ(g.at("isolated").as_bool(), want.isolated);
    std::vector<std::string> blockers;
    for (const auto& b : g.at("blockers").as_array()) blockers.emplace_back(b.as_string());
    EXPECT_EQ(blockers, want.blockers);
    EXPECT_EQ(g.at("subsystem_vendor").is_null(), want.subsystem.empty());
    if (!want.functions.empty()) {
      std::vector<std::string> functions;
      for (const auto& f : g.at("functions").as_array()) functions.emplace_back(f.as_string());
      EXPECT_EQ(functions, want.functions) << "the card's functions, in whatever IOMMU group";
    }
    EXPECT_EQ(!g.at("bmc").is_null(), want.bmc);
  }
  bool off_reported = false;
  for (const auto& f : j.at("findings").as_array()) off_reported |= f.at("id").as_string() == "iommu-off";
  EXPECT_EQ(off_reported, GetParam().groups == 0) << "no groups at all means the IOMMU is off";
  auto h = run({"doctor"});
  EXPECT_EQ(h.rc, r.rc);
  for (const auto& g : GetParam().gpus) EXPECT_NE(h.out.find(g.address), std::string::npos) << h.out;
}

TEST_P(RealMachine, IdsConvertsEachGpusIdsToDecimal) {
  for (const Gpu& want : GetParam().gpus) {
    SCOPED_TRACE(want.address);
    auto r = run({"--json", "ids", want.address.substr(5)});  // the short form is accepted
    EXPECT_EQ(r.rc, want.subsystem.empty() ? 1 : 0) << r.out << r.err;
    json::value j = json_of(r.out);
    EXPECT_EQ(j.at("address").as_string(), want.address);
    std::string vendor = want.ids.substr(0, 4), device = want.ids.substr(5);
    EXPECT_EQ(j.at("vendor").at("hex").as_string(), vendor);
    EXPECT_EQ(j.at("vendor").at("decimal").as_int64(), std::stol(vendor, nullptr, 16));
    EXPECT_EQ(j.at("device").at("decimal").as_int64(), std::stol(device, nullptr, 16));
    if (want.subsystem.empty()) {
      EXPECT_TRUE(j.at("subsystem_vendor").is_null());
      EXPECT_TRUE(j.at("xml").is_null());
      continue;
    }
    EXPECT_EQ(j.at("subsystem_vendor").at("hex").as_string(), want.subsystem.substr(0, 4));
    EXPECT_EQ(j.at("subsystem_vendor").at("decimal").as_int64(), want.sub_vendor_dec);
    EXPECT_EQ(j.at("subsystem_device").at("decimal").as_int64(), want.sub_device_dec);
    std::string xml(j.at("xml").at("override").as_string());
    EXPECT_NE(xml.find("name='x-pci-sub-vendor-id' type='unsigned' value='" + std::to_string(want.sub_vendor_dec) + "'"),
              std::string::npos) << xml;
    EXPECT_NE(xml.find("name='x-pci-sub-device-id' type='unsigned' value='" + std::to_string(want.sub_device_dec) + "'"),
              std::string::npos) << xml;
  }
}

// The whole path a bug reporter takes: make-sysfs-tree writes a directory, the gpuhook binary reads
// it with --root through the real Fs, and prints what the in-process run on the FakeFs printed.
TEST_P(RealMachine, TheBinaryOnAGeneratedRootPrintsTheSameJson) {
  std::string dir = ::testing::TempDir() + "gpuhook-fixture-" + std::to_string(::getpid()) + "-" + GetParam().file;
  std::filesystem::remove_all(dir);
  std::string cmd = std::string(GPUHOOK_MAKE_SYSFS_TREE) + " '" + path_of(GetParam()) + "' '" + dir + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<std::vector<std::string>> verbs = {{"doctor"}, {"groups"}};
  for (const auto& g : GetParam().gpus) verbs.push_back({"ids", g.address});
  for (const auto& v : verbs) {
    std::string line = std::string(GPUHOOK_BINARY) + " --root '" + dir + "' --json";
    for (const auto& a : v) line += " " + a;
    FILE* p = ::popen(line.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    std::vector<std::string> args{"--json"};
    args.insert(args.end(), v.begin(), v.end());
    auto in_process = run(args);
    EXPECT_EQ(json_of(out), json_of(in_process.out)) << line;
    EXPECT_EQ(WEXITSTATUS(status), in_process.rc) << line;
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RealMachine, ::testing::ValuesIn(machines()),
                         [](const ::testing::TestParamInfo<Machine>& i) {
                           std::string n = "m" + i.param.file.substr(0, 2);
                           return n;
                         });

TEST(RealMachines, EveryListingInTheDataDirectoryIsCovered) {
  std::set<std::string> files, covered;
  for (const auto& e : std::filesystem::directory_iterator(std::string(GPUHOOK_SOURCE_DIR) + "/tests/data/real"))
    if (e.path().extension() == ".txt") files.insert(e.path().stem().string());
  for (const auto& m : machines()) covered.insert(m.file);
  EXPECT_EQ(files, covered);
  EXPECT_EQ(files.size(), 21u);
}

}  // namespace
}  // namespace gpuhook::fixtures
