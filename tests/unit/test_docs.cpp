// The man pages (doc/*.scd, one source each) against what they describe, so that they cannot
// drift: gpuhook(8) against the CLI's own --help texts (verbs, their synopses, every option) and
// the README; gpuhook.toml(5) against the keys the profile loader accepts and the README's
// profile reference. A verb, option or key added to one and not the others fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "app/args.h"

namespace gpuhook {
namespace {

std::string slurp(const std::string& rel) {
  std::ifstream f(std::string(GPUHOOK_SOURCE_DIR) + "/" + rel);
  std::stringstream s;
  s << f.rdbuf();
  EXPECT_FALSE(s.str().empty()) << rel << " is missing or empty";
  return s.str();
}

// scdoc text with its bold (*) and underline (_) marks removed: "*check* _VM_" -> "check VM".
std::string plain(std::string s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      o += s[++i];
      continue;
    }
    if (s[i] == '*') continue;
    if (s[i] == '_' && (i == 0 || !std::isalnum(static_cast<unsigned char>(s[i - 1])) ||
                        i + 1 == s.size() || !std::isalnum(static_cast<unsigned char>(s[i + 1]))))
      continue;
    o += s[i];
  }
  return o;
}

std::set<std::string> options_in(const std::string& text) {
  std::set<std::string> o;
  std::regex re("--[a-z][a-z-]*[a-z]");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    o.insert(it->str());
  return o;
}

std::string all_help() {
  std::string h = usage();
  for (const auto& v : verbs()) h += verb_help(v);
  return h;
}

TEST(Docs, EveryVerbOfTheCliIsInTheManPageWithItsSynopsisAndInTheReadme) {
  std::string man = plain(slurp("doc/gpuhook.8.scd"));
  std::string readme = slurp("README.md");
  for (const auto& v : verbs()) {
    std::string help = verb_help(v);
    std::string synopsis = help.substr(0, help.find('\n'));
    synopsis = synopsis.substr(synopsis.find("] " + v) + 2);  // after "usage: gpuhook [--root DIR] [--json] "
    EXPECT_NE(man.find("\n" + synopsis + "\n"), std::string::npos)
        << "gpuhook(8) has no entry '" << synopsis << "' (doc/gpuhook.8.scd, VERBS), as `gpuhook " << v
        << " --help` says";
    EXPECT_NE(readme.find("gpuhook " + v), std::string::npos) << "README.md never mentions `gpuhook " << v << "`";
  }
}

TEST(Docs, EveryOptionOfTheHelpIsInTheManPageAndNoOtherOne) {
  std::string man = slurp("doc/gpuhook.8.scd");
  std::string verbs_and_options = plain(man.substr(man.find("# VERBS"), man.find("# EXIT STATUS") - man.find("# VERBS")));
  auto in_help = options_in(all_help());
  auto in_man = options_in(verbs_and_options);
  for (const auto& o : in_help) EXPECT_TRUE(in_man.count(o)) << o << " is in --help but not in gpuhook(8)";
  for (const auto& o : in_man) EXPECT_TRUE(in_help.count(o)) << o << " is in gpuhook(8) but no --help text has it";
}

// (section, key) for every key the loader accepts: its c.keys(table, "[section]", {...}) calls.
std::vector<std::pair<std::string, std::string>> loader_keys() {
  std::string src = slurp("hook/profile/loader.cpp");
  std::vector<std::pair<std::string, std::string>> keys;
  std::regex call(R"(c\.keys\(\*?\w+, (\"[^\"]*\"|where), \{([^}]*)\}\))");
  for (auto it = std::sregex_iterator(src.begin(), src.end(), call); it != std::sregex_iterator(); ++it) {
    std::string section = (*it)[1].str() == "where" ? "[[commands]]" : (*it)[1].str();
    if (section.front() == '"') section = section.substr(1, section.size() - 2);
    if (section.empty()) continue;  // the top level: table names, each a section below
    std::string list = (*it)[2].str();
    std::regex key("\"([a-z_]+)\"");
    for (auto k = std::sregex_iterator(list.begin(), list.end(), key); k != std::sregex_iterator(); ++k)
      keys.emplace_back(section, (*k)[1].str());
  }
  return keys;
}

TEST(Docs, EveryKeyTheLoaderAcceptsIsInGpuhookTomlAndInTheReadme) {
  auto keys = loader_keys();
  ASSERT_GE(keys.size(), 25u) << "the c.keys(...) calls of hook/profile/loader.cpp changed shape: update this test";
  std::string man = slurp("doc/gpuhook.toml.5.scd");
  std::string readme = slurp("README.md");
  for (const auto& [section, key] : keys) {
    // Under a "## [section]" heading of the man page, before the next heading.
    bool found = false;
    for (size_t h = man.find("## " + section + "\n"); h != std::string::npos; h = man.find("## " + section + "\n", h + 1)) {
      size_t end = man.find("\n#", h + 1);
      std::string block = man.substr(h, end == std::string::npos ? std::string::npos : end - h);
      if (block.find("*" + key + "*") != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << "gpuhook.toml(5) does not describe " << section << " " << key << " under '## " << section << "'";
    // The README: "`[section] key`", or "`key`" on a line that starts with "`[section] ...`".
    bool in_readme = readme.find("`" + section + " " + key + "`") != std::string::npos;
    std::stringstream lines(readme);
    for (std::string l; !in_readme && std::getline(lines, l);)
      in_readme = l.find("`" + section + " ") != std::string::npos && l.find("`" + key + "`") != std::string::npos;
    EXPECT_TRUE(in_readme) << "README.md (Profile reference) does not mention " << section << " " << key;
  }
}

TEST(Docs, EveryKeyOfTheReadmesProfileTableIsOneTheLoaderAccepts) {
  auto keys = loader_keys();
  std::set<std::string> known;
  for (const auto& [s, k] : keys) known.insert(s + " " + k);
  std::string readme = slurp("README.md");
  std::regex row(R"(^\| `(\[[a-z.\[\]]+\]) ([a-z_]+)`((?:, `[a-z_]+`)*))");
  int rows = 0;
  std::stringstream lines(readme);
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    if (!std::regex_search(l, m, row)) continue;
    ++rows;
    std::string section = m[1].str();
    EXPECT_TRUE(known.count(section + " " + m[2].str())) << "README lists " << section << " " << m[2] << ": unknown key";
    std::string more = m[3].str();
    std::regex k("`([a-z_]+)`");
    for (auto it = std::sregex_iterator(more.begin(), more.end(), k); it != std::sregex_iterator(); ++it)
      EXPECT_TRUE(known.count(section + " " + (*it)[1].str())) << "README lists " << section << " " << (*it)[1] << ": unknown key";
  }
  EXPECT_GE(rows, 12) << "the README's profile table changed shape: update this test";
}

}  // namespace
}  // namespace gpuhook
