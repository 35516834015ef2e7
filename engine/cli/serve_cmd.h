// `keyonce serve` and `keyonce token`.
#pragma once

namespace keyonce {

int ServeCommand(int argc, char** argv, int start);
int TokenCommand(int argc, char** argv, int start);

}  // namespace keyonce
