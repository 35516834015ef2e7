// The state file's SQLite handle, for the modules of engine/state/ that keep
// their own tables in it (audit.cc, service_db.cc) and their tests. Nothing
// above engine/state/ includes this: the runner, the CLI and the service go
// through StateStore's, the audit log's and ServiceDb's methods.
#pragma once

#include <sqlite3.h>

#include "state/store.h"

namespace keyonce {

class StateSql {
 public:
  static sqlite3* Of(StateStore& store) { return store.db_; }
};

}  // namespace keyonce
