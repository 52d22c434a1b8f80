// gpuhook setup VM: from a bare host to a working passthrough in one command (verb_setup.cpp).
// run_setup is the verb with its outside world passed in (libvirt, the terminal), for tests.
#pragma once
#include <istream>
#include <ostream>

#include "app/args.h"
#include "app/context.h"
#include "app/libvirt_dl.h"

namespace gpuhook {

inline const char* kBackupDir = "/var/lib/gpuhook/backups";
inline const char* kSetupMarker = "# Written by `gpuhook setup`.";

// `tty`: stdin is a terminal to ask on; `answer` is read from when it is.
int run_setup(AppContext& app, const Invocation& inv, DomainStore& store, bool tty, std::istream& answer, std::ostream& out,
              std::ostream& err);

}  // namespace gpuhook
