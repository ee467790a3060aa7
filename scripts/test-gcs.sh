#!/usr/bin/env bash
# `make test-gcs`: the remote-state cycle against a real Google Cloud Storage bucket. GCS has no
# local server that honours preconditions, so this opt-in run (it needs the network and a
# bucket) is what checks `gs://` end to end; `make test` never runs it.
#
#   CONNCTL_TEST_GCS_URL=gs://BUCKET/FOLDER/   a folder connctl may write (each run uses a new
#                                              sub-folder run-<time>-<pid>/ and leaves it)
#   GOOGLE_APPLICATION_CREDENTIALS=key.json    or GOOGLE_SERVICE_ACCOUNT (a key file path) or
#                                              GOOGLE_SERVICE_ACCOUNT_KEY (the key's JSON)
#
# Immuta and the warehouses are the bundled emulator on 127.0.0.1. Checked: create → plan with
# no change → drift → change; a killed apply leaves its lock, `state unlock` frees it and the
# next apply resumes with no duplicate registration; an older copy cannot be pushed over the
# state; `state pull` shows the journal folded in. Exits 1 with the reason on any failure,
# including missing settings.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fail() { echo "test-gcs: FAILED: $*" >&2; exit 1; }

url="${CONNCTL_TEST_GCS_URL:-}"
[ -n "$url" ] || fail "CONNCTL_TEST_GCS_URL is not set; set it to a folder of a bucket this account may write, e.g. gs://my-bucket/connctl-test/ (see docs/state.md, \"Testing against a real bucket\")"
[[ "$url" =~ ^gs://[a-z0-9][a-z0-9._-]*(/.*)?$ ]] || fail "CONNCTL_TEST_GCS_URL must be gs://BUCKET/FOLDER/, got: $url"
creds=""
for var in GOOGLE_APPLICATION_CREDENTIALS GOOGLE_SERVICE_ACCOUNT GOOGLE_SERVICE_ACCOUNT_PATH; do
  path="${!var:-}"
  [ -z "$path" ] && continue
  [ -r "$path" ] || fail "$var names $path, which cannot be read"
  creds="$var"
done
[ -n "${GOOGLE_SERVICE_ACCOUNT_KEY:-}" ] && creds="GOOGLE_SERVICE_ACCOUNT_KEY"
[ -n "$creds" ] || fail "no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) to a service-account key file, or GOOGLE_SERVICE_ACCOUNT_KEY to its JSON"

cargo build -q --locked -p connctl -p connctl-emulator
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
work="$(mktemp -d)"
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# 150 ms per request, so that a kill lands in the middle of an apply.
"$bin/connctl-emulator" --listen 127.0.0.1:0 --latency-ms 150 --job-step-ms 0 > "$work/emulator.out" 2> "$work/emulator.err" &
emu_pid=$!
emu=""
for _ in $(seq 1 100); do
  emu="$(head -n1 "$work/emulator.out" 2>/dev/null | sed -n 's/^listening on //p')"
  [ -n "$emu" ] && break
  sleep 0.05
done
[ -n "$emu" ] || fail "the emulator did not start: $(cat "$work/emulator.err")"

state="${url%/}/run-$(date -u +%Y%m%dT%H%M%SZ)-$$/state.json"
cd "$work"
cat > connctl.toml <<TOML
[immuta]
url = "$emu"
api_key = { env = "IMMUTA_API_KEY" }

[state]
url = "$state"

[executor.snowflake]
kind = "snowflake"
url = "$emu"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = { type = "programmaticAccessToken", token = { env = "TEST_SF_PAT" } }
TOML
export IMMUTA_API_KEY=emulator-api-key TEST_SF_PAT=test-pat TEST_SF_PASSWORD=test-password
spec() { # spec N [WAREHOUSE]: N Snowflake connections
  echo "version: 1"; echo "connections:"
  for i in $(seq 0 $(($1 - 1))); do
    printf '  - key: sf-%03d\n    technology: Snowflake\n    host: acct%d.snowflakecomputing.com\n    warehouse: %s\n    database: IMMUTA_%d\n    role: R\n    auth: { type: userPassword, username: SYS, password: { env: TEST_SF_PASSWORD } }\n' \
      "$i" "$i" "${2:-WH}" "$i"
  done
}
c() { "$bin/connctl" "$@"; }
expect() { # expect CODE WHAT -- connctl ARGS...
  local want="$1" what="$2"; shift 3
  set +e; c "$@" > out.txt 2>&1; local got=$?; set -e
  [ "$got" -eq "$want" ] || { cat out.txt >&2; fail "$what: \`connctl $*\` exited $got, expected $want"; }
  echo "ok: $what"
}
registrations() {
  python3 -c 'import json,sys,urllib.request; log=json.load(urllib.request.urlopen(sys.argv[1]+"/_emulator/requests")); print(sum(1 for e in log if e["method"]=="POST" and e["path"]=="/data/connection"))' "$emu"
}
pulled() { # pulled PYTHON-EXPR: evaluates EXPR on the pulled state `s`
  c state pull > pulled.json || fail "state pull"
  python3 -c "import json,sys; s=json.load(open('pulled.json')); sys.exit(0 if ($1) else 1)" || { cat pulled.json >&2; fail "state pull: expected $1"; }
}

echo "state: $state"
spec 3 > c.yaml
expect 0 "create 3 connections with the state in GCS" -- apply --auto-approve c.yaml
pulled "all(s['connections'][f'sf-00{i}']['step'] == 'registered' for i in range(3)) and s['tenant'] == '$emu'"
cp pulled.json first.json
expect 0 "plan: no changes" -- plan --detailed-exitcode c.yaml
expect 0 "drift: none" -- drift c.yaml
spec 3 WH2 > c.yaml
expect 2 "plan: the changed warehouse" -- plan --detailed-exitcode c.yaml
expect 0 "apply the change" -- apply --auto-approve c.yaml
expect 0 "plan: no changes after it" -- plan --detailed-exitcode c.yaml

# A runner killed mid-apply: its lock stays, `state unlock` frees it, the next apply resumes.
spec 7 WH2 > c.yaml
c apply --auto-approve --parallelism 1 c.yaml > killed.txt 2>&1 &
apply_pid=$!
sleep 2.5
kill -9 "$apply_pid" 2>/dev/null || fail "the apply finished before it could be killed: $(cat killed.txt)"
wait "$apply_pid" 2>/dev/null || true
expect 1 "a second apply is refused while the killed run's lock stands" -- apply --auto-approve c.yaml
grep -q "is locked by another connctl run" out.txt || { cat out.txt >&2; fail "the refusal does not name the lock"; }
id="$(sed -n 's/.*connctl state unlock \([0-9a-f-]\{36\}\).*/\1/p' out.txt | head -n1)"
[ -n "$id" ] || { cat out.txt >&2; fail "no lock ID in the refusal"; }
expect 0 "state unlock $id" -- state unlock "$id"
expect 0 "the next apply resumes" -- apply --auto-approve c.yaml
[ "$(registrations)" -eq 7 ] || fail "expected 7 registrations in all (no duplicate), got $(registrations)"
echo "ok: 7 registrations, none repeated"
pulled "len(s['connections']) == 7 and all(c['step'] == 'registered' for c in s['connections'].values())"

# An older copy of the same lineage cannot replace the state.
expect 1 "pushing an older copy is refused" -- state push first.json
grep -q "not newer than the state at" out.txt || { cat out.txt >&2; fail "unexpected refusal"; }

echo "test-gcs: PASSED against $state (its folder is left in the bucket)"
