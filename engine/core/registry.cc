#include <algorithm>

#include "keyonce/connector.h"

namespace keyonce {

Registry& Registry::Global() {
  static Registry* registry = new Registry();
  return *registry;
}

void Registry::Add(ConnectorDef def) { defs_.push_back(std::make_unique<ConnectorDef>(std::move(def))); }

const ConnectorDef* Registry::Find(const std::string& name) const {
  for (const auto& d : defs_) {
    if (d->name == name) return d.get();
  }
  return nullptr;
}

std::vector<const ConnectorDef*> Registry::All() const {
  std::vector<const ConnectorDef*> out;
  for (const auto& d : defs_) out.push_back(d.get());
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name < b->name; });
  return out;
}

}  // namespace keyonce
