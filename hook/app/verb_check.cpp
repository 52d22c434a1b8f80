// check: being written (issue 5).
#include "app/verbs.h"
namespace gpuhook {
int verb_check(AppContext&, const Invocation&, std::ostream&, std::ostream& err) { err << "gpuhook: check: not built yet\n"; return 2; }
}  // namespace gpuhook
