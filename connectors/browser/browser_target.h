// The browser target: keys each record into a web application the way a
// careful person would, through Debian's chromium (see browser.cc for the
// settings and docs/browser.md for the recipe language).
//
// Exactly once on a system without transactions. Everything a record's
// `write` actions do before the action marked `submits: true` may be done
// again (a browser that crashed, a session that expired: the record starts
// over). From that click on the record may exist in the system: a failure
// then is settled by the target's `exists` actions (search the system),
// which say whether it is there (its values are read into the reply) or not
// (the record is keyed again). Without `exists`, or when the search itself
// fails, the record is left in doubt (WriteResult::in_doubt): no run keys it
// again until a person decides. After a crash of keyonce, Recover cannot
// tell and Check (the same `exists`) decides per record.
//
// A login that is refused stops the run (WriteResult::stop_run) instead of
// being tried again for every record, which could lock the account.
#pragma once

#include <memory>

#include "keyonce/connector.h"

namespace keyonce::connectors::browser {

Result<std::unique_ptr<Target>> MakeBrowserTarget(const Settings& settings);
// A lookup table in a web application (`find`: a search, then found/absent
// and read), one logged-in browser per run.
Result<std::unique_ptr<Lookup>> MakeBrowserLookup(const Settings& settings);

}  // namespace keyonce::connectors::browser
