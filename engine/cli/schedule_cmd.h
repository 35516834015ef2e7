// `keyonce schedule`: shows when a cron expression fires, with the
// daylight-saving rules the service uses (engine/schedule/cron.h).
#pragma once

namespace keyonce {

// Runs `keyonce schedule ...`; argv[start] is the word after "schedule".
// Returns the process exit code: 0 done, 1 no fire time within the horizon,
// 2 usage error, bad expression, zone or time.
int ScheduleCommand(int argc, char** argv, int start);

}  // namespace keyonce
