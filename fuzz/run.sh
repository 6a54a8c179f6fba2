#!/bin/sh
# Runs every libFuzzer harness of BUILD_DIR for SECONDS each under
# ASan+UBSan (make fuzz), one after the other, and prints the executions
# of each. With FUZZ_RUNS=N in the environment a harness also stops once
# it has run N inputs (whichever comes first). New inputs go to BUILD_DIR/corpus/<harness>/ (the committed
# seeds in fuzz/corpus/ stay as they are); a crash or a broken invariant
# leaves its input in BUILD_DIR/artifacts/ and makes the run fail.
#   fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]
set -u
build=$1
seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
harnesses=${*:-"query seq ids method auth origin form json route time framing"}
mkdir -p "$build/artifacts" "$build/logs"
summary="$build/fuzz-summary.txt"
printf '%-8s %14s %8s %10s  %s\n' harness executions seconds exec/s result >"$summary"
failed=0
for h in $harnesses; do
    mkdir -p "$build/corpus/$h"
    runs=""
    [ -n "${FUZZ_RUNS:-}" ] && runs="-runs=$FUZZ_RUNS"
    dict=""
    [ -f "$src/dict/$h.dict" ] && dict="-dict=$src/dict/$h.dict"
    opts=""
    [ -f "$src/options/$h" ] && opts=$(cat "$src/options/$h") # libFuzzer flags of its own
    echo "fuzz: $h for ${seconds}s" >&2
    start=$(date +%s)
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/fuzz_$h" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=1024 -artifact_prefix="$build/artifacts/$h-" $dict $runs $opts \
        "$build/corpus/$h" "$src/corpus/$h" >"$build/logs/$h.log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/logs/$h.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$build/logs/$h.log" | tail -1)
    result=clean
    if [ "$rc" != 0 ]; then
        result="FAILED (rc $rc, see $build/logs/$h.log)"
        failed=1
    fi
    printf '%-8s %14s %8s %10s  %s\n' "$h" "${execs:-?}" "$took" "${rate:-?}" "$result" >>"$summary"
done
cat "$summary"
exit $failed
