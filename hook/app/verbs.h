// The CLI verbs. Each returns the exit code: 0 fine, 1 a problem found, 2 usage error.
// Output goes to `out` (stdout) and `err` (stderr) so tests can read it.
#pragma once
#include <ostream>
#include <string>

#include "app/args.h"
#include "app/context.h"

namespace gpuhook {

int verb_doctor(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
int verb_groups(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
int verb_ids(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
int verb_check(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
// check with the domain XML given (xml_text) instead of read from --xml or libvirt; setup's last word.
int run_check(AppContext& app, const Invocation& inv, const std::string* xml_text, std::ostream& out, std::ostream& err);
int verb_setup(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
int verb_plan(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
int verb_status(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);
int verb_restore(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);

// Dispatches a parsed verb invocation.
int run_verb(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err);

// JSON string escaping for the --json outputs.
std::string json_str(std::string_view s);

}  // namespace gpuhook
