#include "connectors/common/fields.h"

namespace keyonce::connectors {

FieldSpec FilePathField(const std::string& what, const std::string& example,
                        const std::string& template_example) {
  return FieldSpec::Tmpl("path", TemplateContext::kText)
      .Roots(kRootsStatic)
      .Required()
      .Describe(what +
                " Relative paths are resolved against the recipe's folder; it may use params, run "
                "and state" +
                (template_example.empty() ? "." : ", e.g. " + template_example + "."))
      .Example(example);
}

}  // namespace keyonce::connectors
