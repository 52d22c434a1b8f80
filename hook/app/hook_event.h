// One libvirt event for one VM: the hook path.
#pragma once
#include <string>
#include <string_view>

#include "app/args.h"
#include "app/context.h"

namespace gpuhook {

// Whether gpuhook manages this VM at all: a safe name and a profile file. This is the whole
// work for every other VM's events, so it touches nothing else.
bool has_profile(Fs& fs, const std::string& vm);

// Runs the event. `xml` is the domain XML from stdin; `err` receives the few lines for libvirt's
// error message (stderr). Returns the exit code: 1 refuses prepare/start/started, else 0.
int run_hook_event(AppContext& app, const Invocation& inv, std::string_view xml, std::string& err);

}  // namespace gpuhook
