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

FieldSpec CreateDirsField(bool on_by_default) {
  if (on_by_default) {
    return FieldSpec::Bool("create_dirs")
        .Default("true")
        .Describe("Create the file's folder (and its parents) when missing.");
  }
  return FieldSpec::Bool("create_dirs")
      .Default("false")
      .Describe(
          "Create the file's folder if it is missing. Off by default so a mistyped or "
          "unmounted share fails instead of writing somewhere unexpected.")
      .Example("true");
}

}  // namespace keyonce::connectors
