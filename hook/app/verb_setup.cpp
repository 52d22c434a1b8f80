// doctor, groups, ids: being written (issue 5).
#include "app/verbs.h"
namespace gpuhook {
int verb_doctor(AppContext&, const Invocation&, std::ostream&, std::ostream& err) { err << "gpuhook: doctor: not built yet\n"; return 2; }
int verb_groups(AppContext&, const Invocation&, std::ostream&, std::ostream& err) { err << "gpuhook: groups: not built yet\n"; return 2; }
int verb_ids(AppContext&, const Invocation&, std::ostream&, std::ostream& err) { err << "gpuhook: ids: not built yet\n"; return 2; }
}  // namespace gpuhook
