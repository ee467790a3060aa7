#!/usr/bin/env bash
# `make demo`: the bundled emulator plays Immuta, Snowflake and Databricks on a free loopback
# port, and connctl walks connections.example.yaml through validate → plan → apply → status →
# plan (no changes) → drift (a connection field and a data object edited in the UI) → repaired.
# The emulator is stopped on every exit path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
work="$(mktemp -d)"
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

"$bin/connctl-emulator" --listen 127.0.0.1:0 --job-step-ms 100 > "$work/emulator.out" 2>"$work/emulator.err" &
emu_pid=$!
for _ in $(seq 1 100); do
  url="$(head -n1 "$work/emulator.out" 2>/dev/null | sed -n 's/^listening on //p')"
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { echo "the emulator did not start"; cat "$work/emulator.err"; exit 1; }
echo "emulator (Immuta + Snowflake SQL API + Databricks Statement Execution API) at $url"

cd "$work"
cp "$root/connections.example.yaml" connections.yaml
cat > connctl.toml <<TOML
[immuta]
url = "$url"
api_key = { env = "IMMUTA_API_KEY" }

[executor.snowflake]          # setup scripts run through the (emulated) Snowflake SQL API v2
kind = "snowflake"
url = "$url"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = { type = "programmaticAccessToken", token = { env = "DEMO_SNOWFLAKE_PAT" } }

[executor.databricks]         # … and the (emulated) Databricks Statement Execution API
kind = "databricks"
url = "$url"
auth = { type = "token", token = { env = "DEMO_DATABRICKS_PAT" } }
TOML
export IMMUTA_API_KEY=emulator-api-key DEMO_SNOWFLAKE_PAT=demo-pat DEMO_DATABRICKS_PAT=demo-pat
export SNOWFLAKE_PROD_PASSWORD=demo-password DATABRICKS_PROD_TOKEN=demo-token
c() { "$bin/connctl" "$@"; }

step "1. validate the YAML (no network)" "connctl validate connections.yaml"
c validate --resolve-secrets connections.yaml

step "2. plan: what would change" "connctl plan connections.yaml"
c plan connections.yaml

step "3. apply: script → execute → test → register, for each connection" "connctl apply --auto-approve --wait connections.yaml"
c apply --auto-approve --wait connections.yaml

step "4. status: step, last bulkId, job state" "connctl status"
c status

step "5. plan again: nothing to do" "connctl plan --detailed-exitcode connections.yaml"
c plan --detailed-exitcode connections.yaml

step "6. someone edits a connection in the Immuta UI" "(emulator admin API: warehouse → HAND_EDITED_WH)"
curl -fsS -X PATCH "$url/_emulator/connections/snowflake-prod" -H 'content-type: application/json' \
  -d '{"connection":{"warehouse":"HAND_EDITED_WH"}}' > /dev/null
echo "done"
step "6b. … and turns a governed table off in the UI" "(emulator admin API: IMMUTA_PROD/PUBLIC/ORDERS inactive)"
curl -fsS -X POST "$url/_emulator/objects/snowflake-prod/IMMUTA_PROD/PUBLIC/ORDERS" -H 'content-type: application/json' \
  -d '{"isActive":false}' > /dev/null
echo "done"

step "7. drift: caught (exit 2)" "connctl drift connections.yaml"
set +e
c drift connections.yaml
code=$?
set -e
echo "(exit $code)"
[ "$code" -eq 2 ] || { echo "expected drift (exit 2)"; exit 1; }

step "8. apply restores it" "connctl apply --auto-approve connections.yaml"
c apply --auto-approve connections.yaml
c drift connections.yaml
printf '\nDemo complete: created, no-op plan, drift detected and repaired.\n'
