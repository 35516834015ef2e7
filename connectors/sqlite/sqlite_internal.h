// Factories of the `sqlite` connector's parts (registered in sqlite.cc).
#pragma once

#include <memory>

#include "keyonce/connector.h"

namespace keyonce::connectors::sqlite {

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings);
Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings);
Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings);

}  // namespace keyonce::connectors::sqlite
