// `keyonce audit`: the audit log for a citizen's access request (by CPR
// number, turned into its pseudonymous reference) or for an auditor (by run
// or recipe).
#pragma once

namespace keyonce {

// argv[start...] are the command's options. Returns the exit code: 0 listed
// (also when nothing matched), 1 the state store cannot be read, 2 usage
// error or a malformed CPR number.
int AuditCommand(int argc, char** argv, int start);

}  // namespace keyonce
