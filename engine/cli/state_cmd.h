// `keyonce state init|check`: start a journal on purpose, and verify a state
// file (what it is, its recipes, runs and journal sizes) before trusting it.
#pragma once

namespace keyonce {

// argv[start] is the subcommand. Returns the exit code: 0 done / the file is
// sound, 1 the file is refused or damaged, 2 usage error.
int StateCommand(int argc, char** argv, int start);

}  // namespace keyonce
