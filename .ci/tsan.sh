#!/usr/bin/env bash
# The tests that run threads again, built with ThreadSanitizer (gcc) in
# build-tsan/; any data race or lock-order report fails the run. Only the
# targets these tests need are built, to keep the CI pass short. Selected:
#  - the service (tests/service): the io_context thread against the run
#    threads (scheduler, overlap, max runs, SIGTERM/kill -9 recovery, reloads,
#    metrics, the load test) and its TLS variant; the `example:serve` demo;
#  - connectors with requests in flight (http, OAuth token refresh, the rate
#    limit) and the http target through the fault proxy (exactly-once test),
#    plus the fault proxy's own tests (it runs an io_context);
#  - the runner (every run has a reading and a writing thread; its concurrent
#    targets), the handoff between its stages, and the cron tests the scheduler uses.
# keyonce serve and the fault proxy run as child processes of the tests, built
# with TSan too; every report (also from a child, whose exit code a test may
# not look at) goes to a file under build-tsan/tsan-logs/, and any such file
# fails the run and is printed. Tests labelled slow_e2e (randomized kill -9
# loops, docs/development.md) are left out here as in the ASan pass: a killed
# process cannot report, and the same requests in flight through the fault
# proxy run in ExactlyOnce.HttpTargetThroughEveryFault... without the kills.
# Usage: .ci/tsan.sh [extra ctest args], e.g. .ci/tsan.sh -R 'ServiceTest\.MaxRuns'
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=build-tsan
TARGETS=(keyonce keyonce_api_load keyonce_fault_proxy service_test service_tls_test engine_test
  runner_test cron_test http_test http_e2e_test fault_proxy_test exactly_once_test)
TESTS='^(ServiceTest|ServiceTls|RunnerTest|Handoff|Cron[A-Za-z]*|JsonServerTest|NginxTest|OAuthTest|HttpLookup|HttpEndToEnd|FaultProxyTest|ExactlyOnce)\.|^example:serve$'

# -Wno-tsan: gcc 12 warns that TSan does not model std::atomic_thread_fence,
# which Boost.Asio's handler invocation uses (-Werror would stop the build);
# TSan still sees the mutex that hands posted handlers between threads.
# -O1 -g1: line tables for the reports; half the compile time of -O2 -g.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYONCE_WERROR=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DKEYONCE_SANITIZE=thread -DCMAKE_CXX_FLAGS=-Wno-tsan >/dev/null
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${TARGETS[@]}"
echo "tsan: build took $(($(date +%s) - start)) s"

LOGS="$ROOT/$BUILD_DIR/tsan-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66:log_path=$LOGS/tsan"
if [ -f .ci/tsan.supp ]; then
  TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$ROOT/.ci/tsan.supp"
fi

# gcc 12's TSan cannot map its shadow memory when the kernel randomises
# mmap addresses with more bits than it expects ("FATAL: ThreadSanitizer:
# unexpected memory mapping"); then run everything with ASLR off (setarch -R,
# inherited by every child process).
RUN=()
probe=$(TSAN_OPTIONS=log_path=stderr "$BUILD_DIR/engine/cli/keyonce" --version 2>&1 || true)
if grep -q "unexpected memory mapping" <<<"$probe"; then
  echo "tsan: ASLR is incompatible with this TSan runtime; running with setarch -R"
  RUN=(setarch "$(uname -m)" -R)
fi

start=$(date +%s)
set +e
(cd "$BUILD_DIR" && "${RUN[@]}" ctest --output-on-failure -j "$(nproc)" --timeout 900 \
  -R "$TESTS" -LE slow_e2e "$@")
rc=$?
set -e
echo "tsan: tests took $(($(date +%s) - start)) s"

reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
  for f in $reports; do
    echo "=== $f"
    cat "$f"
  done
  echo "tsan: ThreadSanitizer reported problems (above)"
  exit 1
fi
exit $rc
