// Factories of the `postgres` connector's parts (registered in postgres.cc).
#pragma once

#include <memory>

#include "keyonce/connector.h"

namespace keyonce::connectors::postgres {

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings);
Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings);
Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings);

}  // namespace keyonce::connectors::postgres
