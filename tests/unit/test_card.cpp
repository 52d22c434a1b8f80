// The card, not the slot (issue 11): a GPU's functions are the endpoints of its slot and every
// endpoint below the card's own PCIe switch, in whatever IOMMU group they are. doctor lists them
// as `functions`, not blockers; prepare binds them, each of their groups whole; a driverless host
// bridge in a group blocks nothing; a server's BMC display is not a discrete GPU.
//
// The Arc topology is built from the description of an Intel Arc A310 (VGA 09:00.0,
// HDMI audio 0a:00.0, each behind a downstream port of the card's switch 07:00.0 -> 08:01.0 /
// 08:04.0; Intel ids 8086:56a6, 8086:4f92, switch 8086:4fa1/4fa4): no listing of such a card is in
// ../shared/fixtures/real. The others are fake machines made for one rule each.
#include <gtest/gtest.h>

#include <sstream>

#include "app/verbs.h"
#include "harness.h"
#include "support/cli.h"

namespace gpuhook {
namespace {

namespace json = boost::json;
using fixtures::json_of;
using fixtures::run_cli;
using test::Harness;

const char* kRoot = "/sys/devices/pci0000:00";

// An Intel desktop with an Arc A310: root port 00:01.0, the card's switch (upstream 07:00.0,
// downstream 08:01.0 and 08:04.0), VGA 09:00.0 and audio 0a:00.0. `split`: an ACS override puts
// each function in a group of its own; otherwise everything below the root port is group 1.
void build_arc(FakeHost& h, bool split) {
  auto& k = h.kernel;
  k.add_module({"i915", {}, "i915", false, true});
  k.add_module({"snd_hda_intel", {}, "snd_hda_intel", false, true});
  k.add_module({"vfio_pci", {}, "vfio-pci", false, false});
  k.add_pci({"0000:00:00.0", "8086", "4c43", "", "", "060000", "", "", 0});
  k.add_pci({"0000:00:02.0", "8086", "4c8a", "", "", "030000", "i915", "i915", 2, true});
  k.add_bridge("0000:00:01.0", 1);
  const std::string rp = std::string(kRoot) + "/0000:00:01.0";
  k.add_pci({"0000:07:00.0", "8086", "4fa1", "", "", "060400", "pcieport", "pcieport", 1, false, rp});
  const std::string up = rp + "/0000:07:00.0";
  k.add_pci({"0000:08:01.0", "8086", "4fa4", "", "", "060400", "pcieport", "pcieport", 1, false, up});
  k.add_pci({"0000:08:04.0", "8086", "4fa4", "", "", "060400", "pcieport", "pcieport", 1, false, up});
  k.add_pci({"0000:09:00.0", "8086", "56a6", "8086", "1020", "030000", "i915", "i915", split ? 13 : 1, false,
             up + "/0000:08:01.0"});
  k.add_pci({"0000:0a:00.0", "8086", "4f92", "8086", "1020", "040300", "snd_hda_intel", "snd_hda_intel", split ? 14 : 1,
             false, up + "/0000:08:04.0"});
}

const json::object* gpu(const json::value& j, const std::string& addr) {
  for (const auto& g : j.at("gpus").as_array())
    if (g.at("address").as_string() == addr) return &g.as_object();
  return nullptr;
}

std::vector<std::string> strings(const json::value& a) {
  std::vector<std::string> v;
  for (const auto& x : a.as_array()) v.emplace_back(x.as_string());
  return v;
}

std::string plan_text(Harness& t, const std::string& vm, int* rc) {
  Invocation inv = parse_args({"gpuhook", "plan", vm});
  AppContext a = t.app();
  std::ostringstream out, err;
  *rc = run_verb(a, inv, out, err);
  return out.str() + err.str();
}

TEST(Card, ArcAudioBehindTheCardsOwnSwitchIsAFunctionNotABlocker) {
  FakeHost h;
  build_arc(h, false);
  auto r = run_cli(h.host(), {"--json", "doctor"});
  json::value j = json_of(r.out);
  auto* g = gpu(j, "0000:09:00.0");
  ASSERT_TRUE(g) << r.out;
  EXPECT_TRUE(g->at("discrete").as_bool());
  EXPECT_EQ(strings(g->at("functions")), (std::vector<std::string>{"0000:09:00.0", "0000:0a:00.0"}));
  EXPECT_TRUE(strings(g->at("blockers")).empty()) << "its own audio on bus 0a does not block the card";
  EXPECT_TRUE(g->at("isolated").as_bool());
}

TEST(Card, ArcAudioInAGroupOfItsOwnIsStillTheCardsAndPrepareBindsBothGroups) {
  Harness t;
  build_arc(t.h, true);
  auto r = run_cli(t.h.host(), {"--json", "doctor"});
  json::value j = json_of(r.out);
  auto* g = gpu(j, "0000:09:00.0");
  ASSERT_TRUE(g) << r.out;
  EXPECT_EQ(strings(g->at("functions")), (std::vector<std::string>{"0000:09:00.0", "0000:0a:00.0"}));
  EXPECT_EQ(g->at("groups").as_array().size(), 2u);
  put_profile(t.h, "arc", "[gpu]\naddress = \"0000:09:00.0\"\n");
  int rc = -1;
  std::string out = plan_text(t, "arc", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("bind 0000:09:00.0 to vfio-pci"), std::string::npos) << out;
  EXPECT_NE(out.find("bind 0000:0a:00.0 to vfio-pci"), std::string::npos) << out;
  // And the hook really does it: both on vfio-pci after prepare, both back after release.
  ASSERT_EQ(t.event("arc", "prepare"), 0) << t.log.text();
  EXPECT_EQ(link_name(t.h.fs, "/sys/bus/pci/devices/0000:0a:00.0/driver"), "vfio-pci");
  EXPECT_EQ(link_name(t.h.fs, "/sys/bus/pci/devices/0000:09:00.0/driver"), "vfio-pci");
  t.event("arc", "release");
  EXPECT_EQ(link_name(t.h.fs, "/sys/bus/pci/devices/0000:0a:00.0/driver"), "snd_hda_intel");
  EXPECT_EQ(link_name(t.h.fs, "/sys/bus/pci/devices/0000:09:00.0/driver"), "i915");
}

TEST(Card, AnIntelRootPortAboveAnIntelGpuIsNotTakenForTheCardsSwitch) {
  // A GPU of the platform's vendor directly behind a root port, and behind a chipset switch of
  // another vendor: only its slot is the card. The NIC behind the same root port stays the host's.
  FakeHost h;
  auto& k = h.kernel;
  k.add_bridge("0000:00:1c.0", 5);
  const std::string rp = std::string(kRoot) + "/0000:00:1c.0";
  k.add_pci({"0000:03:00.0", "8086", "56a6", "", "", "030000", "i915", "i915", 5, false, rp});
  k.add_pci({"0000:04:00.0", "8086", "15f3", "", "", "020000", "igc", "igc", 6, false, rp});
  auto r = run_cli(h.host(), {"--json", "doctor"});
  json::value j = json_of(r.out);
  auto* g = gpu(j, "0000:03:00.0");
  ASSERT_TRUE(g) << r.out;
  EXPECT_EQ(strings(g->at("functions")), (std::vector<std::string>{"0000:03:00.0"}));
}

TEST(Card, ADriverlessDummyHostBridgeInTheGroupBlocksNothingButOneWithADriverDoes) {
  // AMD Zen 2: the "PCIe Dummy Host Bridge" 1022:1482 (class 0600, no driver) shares the group of
  // the GPU's root port. The kernel's VFIO viability check ignores a device without a driver.
  FakeHost h;
  auto& k = h.kernel;
  k.add_pci({"0000:00:03.0", "1022", "1482", "", "", "060000", "", "", 3});
  k.add_bridge("0000:00:03.1", 3);
  const std::string rp = std::string(kRoot) + "/0000:00:03.1";
  k.add_pci({"0000:0b:00.0", "10de", "1b80", "10de", "119e", "030000", "nvidia", "nvidia", 3, false, rp});
  k.add_pci({"0000:0b:00.1", "10de", "10f0", "10de", "119e", "040300", "snd_hda_intel", "snd_hda_intel", 3, false, rp});
  auto r = run_cli(h.host(), {"--json", "doctor"});
  json::value j = json_of(r.out);
  auto* g = gpu(j, "0000:0b:00.0");
  ASSERT_TRUE(g) << r.out;
  EXPECT_TRUE(strings(g->at("blockers")).empty()) << r.out;
  EXPECT_TRUE(g->at("isolated").as_bool());
  // A USB controller without a driver still blocks: its driver loads at the next boot.
  k.add_pci({"0000:00:03.2", "1022", "149c", "", "", "0c0330", "", "", 3});
  j = json_of(run_cli(h.host(), {"--json", "doctor"}).out);
  EXPECT_EQ(strings(gpu(j, "0000:0b:00.0")->at("blockers")), (std::vector<std::string>{"0000:00:03.2"}));
}

TEST(Card, BmcDisplaysAreNotDiscreteAndSayWhy) {
  FakeHost h;
  auto& k = h.kernel;
  // ASPEED: its VGA behind the BMC's own PCI bridge 1a03:1150.
  k.add_bridge("0000:00:1c.4", 7);
  const std::string rp = std::string(kRoot) + "/0000:00:1c.4";
  k.add_pci({"0000:02:00.0", "1a03", "1150", "", "", "060400", "", "", 7, false, rp});
  k.add_pci({"0000:03:00.0", "1a03", "2000", "1a03", "2000", "030000", "ast", "ast", 7, true, rp + "/0000:02:00.0"});
  // Matrox G200e of an iRMC (fixture 30's 102b:0522), behind a root port.
  k.add_bridge("0000:00:1c.5", 8);
  k.add_pci({"0000:04:00.0", "102b", "0522", "", "", "030000", "mgag200", "mgag200", 8, false,
             std::string(kRoot) + "/0000:00:1c.5"});
  auto r = run_cli(h.host(), {"--json", "doctor"});
  EXPECT_EQ(r.rc, 1) << "no discrete GPU: the BMC displays are not offered\n" << r.out;
  json::value j = json_of(r.out);
  for (const char* a : {"0000:03:00.0", "0000:04:00.0"}) {
    auto* g = gpu(j, a);
    ASSERT_TRUE(g) << a;
    EXPECT_FALSE(g->at("discrete").as_bool()) << a;
    EXPECT_NE(std::string(g->at("bmc").as_string()).find("BMC"), std::string::npos) << a;
  }
  EXPECT_NE(r.out.find("no-dgpu"), std::string::npos);
  EXPECT_NE(r.out.find("gpu-bmc"), std::string::npos);
}

}  // namespace
}  // namespace gpuhook
