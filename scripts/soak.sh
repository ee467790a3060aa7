#!/usr/bin/env bash
# The reliability suites at full size (`make soak`; see docs/reliability.md):
#   1. faults, secrets, concurrency, bad input, the state-reader property test, the crash
#      suite and the lost-answer and redirect suites with CONNCTL_SOAK=1 (release build);
#   2. the YAML loader fuzz (crates/connctl-spec/tests/fuzz.rs) and the state-reader fuzz,
#      alternately, for FUZZ_SECONDS (default 600) in all.
# Exits non-zero on the first failure; prints a summary either way.
set -uo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
# proptest cases per fuzz round (PROPTEST_CASES overrides every proptest! config).
YAML_CASES=${YAML_CASES:-20000}
STATE_CASES=${STATE_CASES:-2000}
LOG_DIR=${SOAK_LOG_DIR:-target/soak}
mkdir -p "$LOG_DIR"

summary=()
failed=0
started=$(date +%s)

note() { summary+=("$1"); echo "soak: $1"; }

# A test run that prints "test result: FAILED", panics, or exits non-zero has failed.
passed() {
    local status=$1 log=$2
    [[ $status -eq 0 ]] && ! grep -qE 'test result: FAILED|panicked at' "$log"
}

echo "soak: building (release)"
if ! $CARGO test --release --locked -p connctl --test cli --no-run >"$LOG_DIR/build.log" 2>&1 ||
    ! $CARGO test --release --locked -p connctl-spec --test fuzz --no-run >>"$LOG_DIR/build.log" 2>&1; then
    tail -n 40 "$LOG_DIR/build.log"
    echo "soak: FAILED to build"
    exit 1
fi

# 1. The suites at full size.
echo "soak: reliability, crash, lost-answer and redirect suites at full size (CONNCTL_SOAK=1)"
t0=$(date +%s)
CONNCTL_SOAK=1 $CARGO test --release --locked -p connctl --test cli -- \
    test_reliability test_crash test_lost_answers --nocapture >"$LOG_DIR/suites.log" 2>&1
status=$?
# The figures each suite prints (faults injected, rounds, kills, duplicates …).
grep -E '^(faults|secrets|concurrency|bad input|crash|crashes|kills|lost answers|redirects)' "$LOG_DIR/suites.log" | sed 's/^/soak:   /'
grep -E '^test result:' "$LOG_DIR/suites.log" | sed 's/^/soak:   /'
if passed $status "$LOG_DIR/suites.log"; then
    note "suites: passed in $(($(date +%s) - t0)) s"
else
    grep -E '^test .* FAILED$' "$LOG_DIR/suites.log" | sed 's/^/soak:   /'
    note "suites: FAILED (exit $status; log: $LOG_DIR/suites.log)"
    failed=1
fi

# 2. Fuzz for FUZZ_SECONDS: rounds of the YAML loader fuzz, then the state-reader fuzz, each
#    with fresh random seeds, until the time is up. A round is capped by `timeout` so a hang
#    fails instead of stalling; a round cut short by the deadline counts only if no failure
#    was printed.
echo "soak: fuzzing the YAML loader and the state reader for ${FUZZ_SECONDS} s"
fuzz_start=$(date +%s)
deadline=$((fuzz_start + FUZZ_SECONDS))
yaml_rounds=0 state_rounds=0 yaml_inputs=0 state_inputs=0
while [[ $failed -eq 0 && $(date +%s) -lt $deadline ]]; do
    left=$((deadline - $(date +%s)))
    [[ $left -lt 5 ]] && break
    log="$LOG_DIR/fuzz-yaml.log"
    PROPTEST_CASES=$YAML_CASES timeout "$left" \
        $CARGO test --release --locked -p connctl-spec --test fuzz >"$log" 2>&1
    status=$?
    if [[ $status -eq 124 ]] && ! grep -qE 'test result: FAILED|panicked at|minimal failing input' "$log"; then
        yaml_rounds=$((yaml_rounds + 1))
        break
    elif ! passed $status "$log"; then
        note "YAML fuzz: FAILED in round $((yaml_rounds + 1)) (log: $log)"
        grep -E 'minimal failing input|panicked at' "$log" | head -n 5 | sed 's/^/soak:   /'
        failed=1
        break
    fi
    yaml_rounds=$((yaml_rounds + 1))
    # Three generated properties in fuzz.rs take PROPTEST_CASES each.
    yaml_inputs=$((yaml_inputs + 3 * YAML_CASES))

    left=$((deadline - $(date +%s)))
    [[ $left -lt 5 ]] && break
    log="$LOG_DIR/fuzz-state.log"
    PROPTEST_CASES=$STATE_CASES timeout "$left" \
        $CARGO test --release --locked -p connctl --test cli -- test_reliability_state_reader:: >"$log" 2>&1
    status=$?
    if [[ $status -eq 124 ]] && ! grep -qE 'test result: FAILED|panicked at|minimal failing input' "$log"; then
        state_rounds=$((state_rounds + 1))
        break
    elif ! passed $status "$log"; then
        note "state fuzz: FAILED in round $((state_rounds + 1)) (log: $log)"
        grep -E 'minimal failing input|panicked at' "$log" | head -n 5 | sed 's/^/soak:   /'
        failed=1
        break
    fi
    state_rounds=$((state_rounds + 1))
    # Two generated properties (random bytes, mutated state), each run by two commands.
    state_inputs=$((state_inputs + 2 * STATE_CASES))
done
note "fuzz: $(($(date +%s) - fuzz_start)) s; YAML loader: $yaml_rounds round(s), ≥ $yaml_inputs inputs; state reader: $state_rounds round(s), ≥ $state_inputs inputs; panics: $([[ $failed -eq 0 ]] && echo 0 || echo 'see above')"

echo
echo "soak summary ($(($(date +%s) - started)) s):"
for line in "${summary[@]}"; do echo "  $line"; done
if [[ $failed -ne 0 ]]; then
    echo "soak: FAILED"
    exit 1
fi
echo "soak: passed"
