// Test helpers for the CLI verbs: run one in-process on any Host (FakeHost, RealFs under a tree)
// exactly as main() would after parsing, read JSON output, load a real listing into a FakeHost.
#pragma once
#include <boost/json.hpp>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "app/args.h"
#include "app/verbs.h"
#include "fake/fake_host.h"
#include "support/listing.h"
#include "support/sysfs_tree.h"

namespace gpuhook::fixtures {

struct CliResult {
  int rc = -1;
  std::string out, err;
};

// args without argv[0]: {"--json", "doctor"}.
inline CliResult run_cli(Host host, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"gpuhook"};
  argv.insert(argv.end(), args.begin(), args.end());
  Invocation inv = parse_args(argv);
  CliResult r;
  if (inv.kind == Invocation::Kind::usage_error) {
    r.rc = 2;
    r.err = inv.error;
    return r;
  }
  if (inv.kind != Invocation::Kind::verb) return r;
  if (inv.help) {
    r.rc = 0;
    r.out = verb_help(inv.verb);
    return r;
  }
  AppContext app{host, inv.root, {}, {}, {}};
  std::ostringstream out, err;
  r.rc = run_verb(app, inv, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// Parses a verb's JSON output; a test fails on invalid JSON through the exception.
inline boost::json::value json_of(const std::string& text) { return boost::json::parse(text); }

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A FakeHost whose /sys is the tree generated from the listing (nothing else of the fake kernel's
// model is set up: no modules, units or processes).
inline std::unique_ptr<FakeHost> host_from_listing(const Listing& l) {
  auto h = std::make_unique<FakeHost>();
  write_tree(h->fs, build_sysfs_tree(l));
  return h;
}

}  // namespace gpuhook::fixtures
