#!/usr/bin/env python3
"""connctl benchmarks (`make bench`): the release binaries against the bundled emulator.

Cases (issue 7, docs/performance.md):

  B1 local    `connctl validate` + `connctl plan --refresh=false` of 10,000 connections in 100
              files; no emulator. Target: each under 1 s and 150 MB.
  B2 refresh  `connctl plan --parallelism 32` of 2,000 managed connections, emulator at
              --latency-ms 25. Target: within 1.2x the floor.
  B3 apply    `connctl apply --auto-approve --skip-preflight --parallelism 32` creating 500
              connections, the snowflake and databricks executors against the emulator,
              --latency-ms 25. Target: within 1.2x the floor. (Preflight is B3p's.)
  B3p preflt  `connctl preflight --parallelism 32` of B3's 500 connections: the read-only checks
              apply runs before its first write unless --skip-preflight, so B3 + B3p is what a
              default `apply` of 500 creates costs. No target: the row reports its requests,
              wall and floor (needed = three Immuta reads, one connection lookup per key and
              each check's statements: 6 per Snowflake, 8 + SCIM Me per Databricks connection
              with audit; see needed_preflight).
  B3s apply   B3 with the state in S3: moto on loopback (from target/test-tools, `make
              test-deps`), behind a counting proxy; fake credentials, AWS_ENDPOINT_URL.
              Target: wall within 1.3x B3's; the table shows requests and KB sent to the
              store per connection.
  B4 by hand  the documented per-connection flow for the same 500 connections, one request at a
              time (scripts/create -> run the script on the warehouse API -> connection/test ->
              register), done here with urllib the way a person's curl script does it.
              Target: B4 at least 20x slower than B3.
  B5 changed  `connctl plan --refresh=changed` of the 2,000 managed connections of B2 after a
              YAML change to 10 of them (issue 16). Target: at most 35 requests, within 1.2x
              the floor (here: the same plan's local work, timed with --refresh=false, plus
              the latency floor).
  B6 objects  `connctl plan --parallelism 32` of 20 managed connections listing 100 data
              objects each (2,000: databases, schemas, tables) that match Immuta (issue 17),
              --latency-ms 25. Target: within 1.2x the floor (as B5's: the same plan's local
              work, timed with --refresh=false, plus the latency floor of its GETs).

floor = requests needed x injected latency / parallelism, where "requests needed" is the minimum
the protocol allows (see needed_* below): it is what a perfect client pays in latency and
nothing else. wall/floor is the ratio the targets are about.

Every case runs in a fresh temporary folder with a fresh emulator on 127.0.0.1:0 (killed at the
end of the case); requests are counted from the emulator's request log (`GET /_emulator/requests`,
which holds only Immuta and warehouse requests); peak RSS is the connctl process's own
(os.wait4). The emulator runs with --job-step-ms 0 so that only the injected latency costs time (the floor counts nothing else).

Connections alternate: Snowflake with userPassword auth, Databricks with a token; the secrets are
`{ env: NAME }` references.

Usage:  python3 scripts/bench.py [--quick] [--only B2 ...] [--scale F] [--latency-ms MS]
Needs:  cargo build --release -p connctl -p connctl-emulator  (honours CARGO_TARGET_DIR)
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "emulator-api-key"
SECRET_ENV = {
    "IMMUTA_API_KEY": API_KEY,
    "BENCH_SF_PASSWORD": "bench-sf-password",
    "BENCH_DBX_TOKEN": "bench-dbx-token",
    "BENCH_SF_PAT": "bench-sf-pat",
    "BENCH_DBX_PAT": "bench-dbx-pat",
}
PARALLELISM = 32
LIST_PAGE = 1000  # connctl's page size for POST /data/object/search


# ----------------------------------------------------------------------------------------------
# The generated connections


def conn_data(i: int) -> dict:
    """Connection number i: even = Snowflake userPassword, odd = Databricks token."""
    if i % 2 == 0:
        return {
            "key": f"sf-{i:05d}",
            "technology": "Snowflake",
            "host": f"acct{i:05d}.snowflakecomputing.com",
            "port": 443,
            "warehouse": "IMMUTA_WH",
            "database": f"IMMUTA_DB_{i:05d}",
            "role": f"IMMUTA_{i:05d}_SYSTEM",
            "username": f"IMMUTA_{i:05d}_SYSTEM_ACCOUNT",
            "password_env": "BENCH_SF_PASSWORD",
            "exclude": ["ACCOUNTADMIN"],
        }
    return {
        "key": f"dbx-{i:05d}",
        "technology": "Databricks",
        "workspaceUrl": f"dbc-{i:05d}.cloud.databricks.com",
        "port": 443,
        "httpPath": f"/sql/1.0/warehouses/wh{i:05d}",
        "catalog": f"immuta_{i:05d}",
        "token_env": "BENCH_DBX_TOKEN",
        "workspaceIds": ["1234567890"],
    }


def yaml_entry(c: dict) -> str:
    if c["technology"] == "Snowflake":
        return f"""  - key: {c['key']}
    technology: Snowflake
    host: {c['host']}
    port: {c['port']}
    warehouse: {c['warehouse']}
    database: {c['database']}
    role: {c['role']}
    auth:
      type: userPassword
      username: {c['username']}
      password: {{ env: {c['password_env']} }}
    audit: {{ enabled: true }}
    workspaces: {{ enabled: false }}
    impersonation: {{ enabled: false }}
    lineage: {{ enabled: false }}
    userRolePattern: {{ exclude: [{', '.join(c['exclude'])}] }}
"""
    return f"""  - key: {c['key']}
    technology: Databricks
    workspaceUrl: {c['workspaceUrl']}
    httpPath: {c['httpPath']}
    port: {c['port']}
    catalog: {c['catalog']}
    auth:
      type: token
      token: {{ env: {c['token_env']} }}
    audit: {{ enabled: true }}
    workspaceIds: [{', '.join(f'"{w}"' for w in c['workspaceIds'])}]
"""


YAML_HEADER = """# generated by scripts/bench.py
version: 1
defaults:
  settings: { isActive: false }
  options: { forceRecursiveCrawl: true }
connections:
"""


def write_specs(folder: Path, n: int, files: int) -> list[dict]:
    """n connections spread evenly over `files` YAML files in folder; returns their data."""
    folder.mkdir(parents=True, exist_ok=True)
    conns = [conn_data(i) for i in range(n)]
    per = math.ceil(n / files)
    for f in range(files):
        chunk = conns[f * per : (f + 1) * per]
        if chunk:
            text = YAML_HEADER + "".join(yaml_entry(c) for c in chunk)
            (folder / f"connections-{f:03d}.yaml").write_text(text)
    return conns


def write_settings(work: Path, url: str | None) -> Path:
    """connctl.toml: Immuta and both executors at the emulator (as scripts/demo.sh does)."""
    text = ""
    if url:
        text += f"""[immuta]
url = "{url}"
api_key = {{ env = "IMMUTA_API_KEY" }}

[executor.snowflake]
kind = "snowflake"
url = "{url}"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = {{ type = "programmaticAccessToken", token = {{ env = "BENCH_SF_PAT" }} }}

[executor.databricks]
kind = "databricks"
url = "{url}"
auth = {{ type = "token", token = {{ env = "BENCH_DBX_PAT" }} }}
"""
    path = work / "connctl.toml"
    path.write_text(text)
    return path


# The three payloads a person builds by hand, following the field tables of docs/yaml-reference.md
# (and the known-good shapes in crates/connctl-immuta/tests/snapshots).


def script_request(c: dict) -> dict:
    if c["technology"] == "Snowflake":
        config = {
            "host": c["host"],
            "warehouse": c["warehouse"],
            "database": c["database"],
            "authenticationType": "userPassword",
            "username": c["username"],
            "password": SECRET_ENV[c["password_env"]],
            "audit": {"enabled": True},
            "workspaces": {"enabled": False},
            "impersonation": {"enabled": False},
            "lineage": {"enabled": False},
            "userRolePattern": {"exclude": c["exclude"]},
        }
        return {"type": "Snowflake", "autoBootstrap": False, "config": config}
    config = {
        "workspaceUrl": c["workspaceUrl"],
        "httpPath": c["httpPath"],
        "authenticationType": "token",
        "token": SECRET_ENV[c["token_env"]],
        "catalog": c["catalog"],
        "audit": {"enabled": True},
        "workspaceIds": c["workspaceIds"],
    }
    return {"type": "Databricks", "autoBootstrap": False, "config": config}


def registration(c: dict) -> dict:
    common = {
        "connectionKey": c["key"],
        "settings": {"isActive": False},
        "options": {"forceRecursiveCrawl": True},
    }
    if c["technology"] == "Snowflake":
        password = SECRET_ENV[c["password_env"]]
        connection = {
            "technology": "Snowflake",
            "hostname": c["host"],
            "port": c["port"],
            "warehouse": c["warehouse"],
            "role": c["role"],
            "authenticationType": "userPassword",
            "username": c["username"],
            "password": password,
        }
        native = {
            "type": "Snowflake",
            "autoBootstrap": False,
            "config": {
                "host": c["host"],
                "port": c["port"],
                "warehouse": c["warehouse"],
                "database": c["database"],
                "authenticationType": "userPassword",
                "username": c["username"],
                "password": password,
                "audit": {"enabled": True},
                "workspaces": {"enabled": False},
                "impersonation": {"enabled": False},
                "lineage": {"enabled": False},
                "userRolePattern": {"exclude": c["exclude"]},
            },
        }
    else:
        token = SECRET_ENV[c["token_env"]]
        connection = {
            "technology": "Databricks",
            "hostname": c["workspaceUrl"],
            "port": c["port"],
            "httpPath": c["httpPath"],
            "authenticationType": "token",
            "token": token,
        }
        native = {
            "type": "Databricks",
            "autoBootstrap": False,
            "unityCatalog": True,
            "config": {
                "host": c["workspaceUrl"],
                "port": c["port"],
                "authenticationType": "token",
                "token": token,
                "catalog": c["catalog"],
                "audit": {"enabled": True},
                "workspaceIds": c["workspaceIds"],
            },
        }
    return {**common, "connection": connection, "nativeIntegration": native}


def split_sql(script: str) -> list[str]:
    """Top-level statements of a script: `;` outside quotes and comments ends a statement."""
    out, cur, i, n = [], [], 0, len(script)
    while i < n:
        ch = script[i]
        if script.startswith("--", i):
            j = script.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if script.startswith("/*", i):
            j = script.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if ch == "'" and script[j] == "\\":
                    j += 2
                    continue
                if script[j] == ch:
                    if j + 1 < n and script[j + 1] == ch:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            cur.append(script[i : j + 1])
            i = j + 1
            continue
        if ch == ";":
            stmt = "".join(cur).strip()
            if stmt:
                out.append(stmt)
            cur = []
        else:
            cur.append(ch)
        i += 1
    stmt = "".join(cur).strip()
    if stmt:
        out.append(stmt)
    return out


# ----------------------------------------------------------------------------------------------
# Processes


def bin_dir(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).resolve()
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else ROOT / "target"
    if not base.is_absolute():
        base = ROOT / base
    return base / "release"


class Emulator:
    """A connctl-emulator on a free loopback port; `stop()` kills it."""

    def __init__(self, exe: Path, work: Path, *args: str):
        self.log = open(work / "emulator.err", "wb")
        self.proc = subprocess.Popen(
            [str(exe), "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=work,
        )
        line = self.proc.stdout.readline().decode().strip()
        m = re.match(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r}; see {work}/emulator.err")
        self.url = m.group(1)

    def requests(self, since: int = 0) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/_emulator/requests?since={since}") as r:
            return json.load(r)

    def admin(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Run:
    wall: float
    rss_mb: float
    cpu: float
    code: int
    out: str
    err: str


def run_connctl(exe: Path, work: Path, args: list[str], ok=(0,)) -> Run:
    """Runs connctl in work; wall time and the process's own peak RSS (os.wait4)."""
    env = {**os.environ, **SECRET_ENV, "NO_COLOR": "1"}
    env.pop("IMMUTA_URL", None)
    out_path, err_path = work / "connctl.out", work / "connctl.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(exe), *args], cwd=work, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    run = Run(wall, usage.ru_maxrss / 1024, cpu, proc.returncode, out_path.read_text(), err_path.read_text())
    if run.code not in ok:
        raise RuntimeError(
            f"connctl {' '.join(args)} exited {run.code}\n--- stdout\n{run.out[-3000:]}\n"
            f"--- stderr\n{run.err[-3000:]}"
        )
    return run


# ----------------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    case: str
    what: str
    wall: float
    requests: int | None = None
    needed: int | None = None
    rss_mb: float | None = None
    cpu: float | None = None
    floor: float | None = None
    target: str = ""
    passed: bool | None = None
    store_requests: float | None = None  # per connection, to a remote state's store
    store_kb: float | None = None  # KB written per connection to that store
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.wall / self.floor if self.floor else None


def in_flight(requests: int, latency: int, wall: float) -> str:
    """Mean requests held in the emulator's latency at once (PARALLELISM would be the most)."""
    return f"mean requests in flight {requests * latency / 1000 / wall:.1f} (of {PARALLELISM} allowed)"


def count_requests(log: list[dict]) -> int:
    return sum(1 for e in log if not e["path"].startswith("/_emulator"))


def per_route(log: list[dict]) -> dict[str, int]:
    """Requests by method and route shape (keys and ids folded)."""
    counts: dict[str, int] = {}
    for e in log:
        p = e["path"]
        # Data objects below a connection (B6): the whole path folded.
        p = re.sub(r"^/data/object/search/.+", "/data/object/search/{path}", p)
        p = re.sub(r"^/data/(object|settings|crawl)/(?!search(/|$))[^/]+/.+", r"/data/\1/{path}", p)
        p = re.sub(r"^/data/(connection|object|settings|crawl)/(?!test$|search$)[^/{]+$", r"/data/\1/{key}", p)
        p = re.sub(r"^/integrations/\d+", "/integrations/{id}", p)
        p = re.sub(r"^/api/v2/statements/[^/]+", "/api/v2/statements/{handle}", p)
        p = re.sub(r"^/api/2\.0/sql/statements/[^/]+", "/api/2.0/sql/statements/{id}", p)
        k = f"{e['method']} {p}"
        counts[k] = counts.get(k, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def script_statements(emu: Emulator) -> dict[str, int]:
    """Statements per setup script, by technology (from the emulator's admin state)."""
    state = emu.admin("GET", "/_emulator/state")
    out: dict[str, int] = {}
    for s in state.get("scripts", []):
        n = s.get("statements")
        n = len(n) if isinstance(n, list) else int(n or 0)
        out.setdefault(s.get("technology", "?"), n)
    return out


def needed_create(sf: int, dbx: int, dbx_statements: int) -> int:
    """Minimal requests to create sf Snowflake and dbx Databricks connections.

    Each: POST /integrations/scripts/create, the script, POST /data/connection/test,
    POST /data/connection. The Snowflake script is one synchronous multi-statement request;
    a Databricks script is one synchronous (wait_timeout >= 5s) request per statement.
    """
    return sf * (3 + 1) + dbx * (3 + dbx_statements)


def needed_refresh(managed: int) -> int:
    """The listing pages, then each managed object read once: connection, settings, integration."""
    return max(1, math.ceil(managed / LIST_PAGE)) + 3 * managed


# ----------------------------------------------------------------------------------------------
# The cases


def b1_local(bins: Path, scale: float, keep: bool) -> list[Row]:
    n, files = round(10_000 * scale), max(1, round(100 * scale))
    with case_dir("B1", keep) as work:
        write_specs(work / "connections", n, files)
        write_settings(work, None)
        v = run_connctl(bins / "connctl", work, ["validate", "connections"])
        p = run_connctl(
            bins / "connctl",
            work,
            ["plan", "--refresh=false", "--state", "state.json", "--color", "never", "connections"],
            ok=(0, 2),
        )
        summary = next((ln for ln in p.out.splitlines() if ln.startswith("Plan:")), "")
        rows = []
        for name, r in (("validate", v), ("plan --refresh=false", p)):
            row = Row("B1", f"{name}, {n} conns / {files} files", r.wall, 0, 0, r.rss_mb, r.cpu)
            row.target = "< 1 s, < 150 MB"
            row.passed = r.wall < 1.0 and r.rss_mb < 150
            rows.append(row)
        rows[1].notes.append(summary)
        return rows


def seed_managed(bins: Path, work: Path, n: int) -> tuple[list[dict], Path]:
    """n managed connections, made quickly: registration bodies seeded into an emulator (admin
    API) on a --state-file, adopted with `connctl import` at no latency. Returns their data and
    the emulator's state file, for an emulator restarted on it with --latency-ms."""
    conns = write_specs(work / "connections", n, max(1, n // 100))
    emu_state = work / "emulator-state.json"
    emu = Emulator(bins / "connctl-emulator", work, "--job-step-ms", "0", "--state-file", str(emu_state))
    state_path = work / ".connctl" / "state.json"
    try:
        write_settings(work, emu.url)
        emu.admin("POST", "/_emulator/seed", {"connections": [registration(c) for c in conns]})
        keys = [a for c in conns for a in ("--key", c["key"])]
        run_connctl(bins / "connctl", work, ["import", "connections", *keys])
        # A create's state has no integration id (the registration answer carries none): drop
        # the ids import recorded, so the state is the one `apply` leaves. The next apply's
        # refresh records them (one write), as a team's next merge does; that apply is run
        # here, and checked, so the plans below take the path they take in use.
        st = json.loads(state_path.read_text())
        for cs in st["connections"].values():
            cs.pop("integrationId", None)
        state_path.write_text(json.dumps(st, indent=2))
        run_connctl(bins / "connctl", work, ["apply", "--auto-approve", "--parallelism", str(PARALLELISM), "connections"])
    finally:
        emu.stop()
    st = json.loads(state_path.read_text())
    unrecorded = [k for k, cs in st["connections"].items() if not cs.get("integrationId")]
    if unrecorded:
        raise SystemExit(f"seed: apply recorded no integration id for {len(unrecorded)} connection(s), e.g. {unrecorded[0]}")
    # The emulator restarts on another port, which the state would refuse as another tenant.
    st.pop("tenant", None)
    state_path.write_text(json.dumps(st, indent=2))
    return conns, emu_state


def b2_refresh(bins: Path, scale: float, latency: int, keep: bool) -> list[Row]:
    """2,000 managed connections (seed_managed), then the emulator restarts on the same
    --state-file with --latency-ms and `connctl plan` is measured."""
    n = round(2_000 * scale)
    with case_dir("B2", keep) as work:
        _, emu_state = seed_managed(bins, work, n)
        emu = Emulator(
            bins / "connctl-emulator", work,
            "--job-step-ms", "0", "--latency-ms", str(latency), "--state-file", str(emu_state),
        )
        try:
            write_settings(work, emu.url)
            r = run_connctl(
                bins / "connctl", work,
                ["plan", "--parallelism", str(PARALLELISM), "--color", "never", "--detailed-exitcode", "connections"],
                ok=(0, 2),
            )
            log = emu.requests()
        finally:
            emu.stop()
        needed = needed_refresh(n)
        row = Row("B2", f"plan, {n} managed conns, p={PARALLELISM}", r.wall, count_requests(log), needed, r.rss_mb, r.cpu)
        row.floor = needed * latency / 1000 / PARALLELISM
        row.target = "<= 1.2x floor"
        row.passed = row.ratio is not None and row.ratio <= 1.2
        summary = next((ln for ln in r.out.splitlines() if ln.startswith(("Plan:", "No changes"))), "")
        row.notes.append(f"{summary or 'plan printed no summary line'} (exit {r.code})")
        row.notes.append(in_flight(row.requests, latency, r.wall))
        row.notes.append("by route: " + json.dumps(per_route(log)))
        return [row]


def b3_apply(bins: Path, scale: float, latency: int, keep: bool, state: str | None = None) -> tuple[list[Row], int]:
    """B3; with `state` (a URL) the state lives there instead of in .connctl/state.json."""
    n = round(500 * scale)
    with case_dir("B3s" if state else "B3", keep) as work:
        write_specs(work / "connections", n, max(1, n // 100))
        emu = Emulator(bins / "connctl-emulator", work, "--job-step-ms", "0", "--latency-ms", str(latency))
        try:
            write_settings(work, emu.url)
            r = run_connctl(
                bins / "connctl", work,
                ["apply", "--auto-approve", "--skip-preflight", "--parallelism", str(PARALLELISM), "--color", "never",
                 *(["--state", state] if state else []), "connections"],
            )
            log = emu.requests()
            stmts = script_statements(emu)
            live = len(emu.admin("GET", "/_emulator/state")["connections"])
        finally:
            emu.stop()
        local = work / ".connctl" / "state.json"
        state_bytes = local.stat().st_size if not state else None
        sf, dbx = (n + 1) // 2, n // 2
        # apply plans first: the listing pages, then the creates.
        needed = math.ceil(n / LIST_PAGE) + needed_create(sf, dbx, stmts.get("Databricks", 0))
        row = Row("B3", f"apply, create {n} conns, p={PARALLELISM}", r.wall, count_requests(log), needed, r.rss_mb, r.cpu)
        row.floor = needed * latency / 1000 / PARALLELISM
        row.target = "<= 1.2x floor"
        row.passed = row.ratio is not None and row.ratio <= 1.2
        row.notes += [
            f"{live} connections live afterwards",
            f"statements per setup script: {stmts}",
            f"state file {state_bytes / 1e6:.2f} MB" if state_bytes is not None else "",
            in_flight(row.requests, latency, r.wall),
            "by route: " + json.dumps(per_route(log)),
        ]
        return [row], stmts.get("Databricks", 0)


def needed_preflight(sf: int, dbx: int) -> int:
    """The requests the checks need (docs/preflight.md). Immuta: GET /integrations, the
    connection-API probe (POST /data/object/search) and GET /bim/rpc/user/current once, then
    GET /data/connection/{key} per connection. Snowflake, with the executor's role ACCOUNTADMIN:
    SHOW GRANTS TO ROLE for it and each role it inherits in the emulator (SECURITYADMIN,
    USERADMIN, SYSADMIN), SHOW WAREHOUSES and SHOW DATABASES: 6. Databricks (one workspace each
    here, audit on): the metastore, current_user(), the metastore's grants, one
    is_account_group_member (the runner holds CREATE CATALOG through a group), SHOW CATALOGS and
    the three system.access tables: 8, plus SCIM Me with the connection's own token. Statements
    connections of one workspace share are asked once; here each has its own workspace."""
    return 3 + (sf + dbx) + sf * 6 + dbx * (8 + 1)


def b3p_preflight(bins: Path, scale: float, latency: int, keep: bool) -> list[Row]:
    """B3's connections, checked by `connctl preflight` against a fresh emulator (nothing
    registered yet, as apply's gate sees them)."""
    n = round(500 * scale)
    with case_dir("B3p", keep) as work:
        write_specs(work / "connections", n, max(1, n // 100))
        emu = Emulator(bins / "connctl-emulator", work, "--job-step-ms", "0", "--latency-ms", str(latency))
        try:
            write_settings(work, emu.url)
            r = run_connctl(
                bins / "connctl", work,
                ["preflight", "--parallelism", str(PARALLELISM), "--format", "json", "connections"],
                ok=(0, 1),
            )
            log = emu.requests()
        finally:
            emu.stop()
        sf, dbx = (n + 1) // 2, n // 2
        needed = needed_preflight(sf, dbx)
        row = Row("B3p", f"preflight, {n} new conns, p={PARALLELISM}", r.wall, count_requests(log), needed, r.rss_mb, r.cpu)
        row.floor = needed * latency / 1000 / PARALLELISM
        row.target = "report only"
        try:
            failed = json.loads(r.out).get("failed")
        except ValueError:
            failed = "unreadable output"
        row.notes += [
            f"exit {r.code}, failed: {failed}",
            in_flight(row.requests, latency, r.wall),
            "by route: " + json.dumps(per_route(log)),
        ]
        return [row]


class CountingProxy:
    """An HTTP proxy on a free loopback port in front of `upstream`: it forwards every request
    as it is (moto checks no signatures, so the Host it was signed for does not matter) and
    counts requests by method and the bytes of their bodies. This is the count the B3s row
    reports: what the store was sent, seen from outside connctl."""

    def __init__(self, upstream: int):
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.sent = 0
        self.received = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the S3 client expects
            disable_nagle_algorithm = True  # headers and body go out in two writes
            upstream_conn: http.client.HTTPConnection | None = None

            def forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                if self.upstream_conn is None:
                    self.upstream_conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
                    self.upstream_conn.connect()
                    self.upstream_conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.upstream_conn.request(self.command, self.path, body=body, headers=headers)
                resp = self.upstream_conn.getresponse()
                data = resp.read()
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "keep-alive", "transfer-encoding"):
                        continue
                    if k.lower() == "content-length" and self.command != "HEAD":
                        continue
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                kind = self.command
                if kind == "GET" and ("list-type=" in self.path or self.path.rstrip("/").count("/") < 2):
                    kind = "LIST"
                with proxy.lock:
                    proxy.requests[kind] = proxy.requests.get(kind, 0) + 1
                    proxy.sent += length
                    proxy.received += len(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.requests, self.sent, self.received = {}, 0, 0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MotoS3:
    """moto's S3 server (installed by `make test-deps` under target/test-tools/) on a free
    loopback port, with bucket `bench`, behind a CountingProxy; `env` points connctl at it
    with fake credentials (nothing in a cloud is reachable or needed)."""

    def __init__(self, work: Path):
        exe = ROOT / "target" / "test-tools" / "venv" / "bin" / "moto_server"
        if not exe.is_file():
            raise RuntimeError(f"missing {exe}: run `make test-deps` (B3s needs moto)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.log = open(work / "moto.log", "wb")
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto did not start; see {work}/moto.log")
                time.sleep(0.1)
        # moto checks no signatures: a plain PUT creates the bucket.
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT")).close()
        self.proxy = CountingProxy(port)
        self.env = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.proxy.port}",
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        if getattr(self, "proxy", None):
            self.proxy.stop()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def b3s_s3_state(bins: Path, scale: float, latency: int, keep: bool) -> list[Row]:
    """B3 with the state in S3 (moto on loopback): requests and bytes sent to the store per
    created connection, counted by the proxy in front of moto. Target: wall within 1.3x B3's."""
    n = round(500 * scale)
    with case_dir("B3s-moto", keep) as work:
        s3 = MotoS3(work)
        saved = {k: os.environ.get(k) for k in s3.env}
        os.environ.update(s3.env)
        try:
            rows, _ = b3_apply(bins, scale, latency, keep, state="s3://bench/connctl/state.json")
            counts, sent = dict(s3.proxy.requests), s3.proxy.sent
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            s3.stop()
    row = rows[0]
    row.case, row.what = "B3s", f"apply, create {n} conns, state in S3 (moto), p={PARALLELISM}"
    row.target, row.passed = "<= 1.3x B3 wall", None
    total = sum(counts.values())
    row.store_requests, row.store_kb = total / n, sent / n / 1000
    row.notes.insert(0, (
        f"state store (counted by a proxy in front of moto): {total} requests "
        f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), {sent / 1e6:.2f} MB sent"
    ))
    return [row]


class Http:
    """One request at a time, as a curl script does."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body: object | None = None, headers: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        req.add_header("accept", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)


def by_hand(http: Http, c: dict) -> None:
    """The documented manual flow for one connection: script, run it, test, register."""
    immuta = {"Authorization": f"Bearer {API_KEY}"}
    status, sql, _ = http.call("POST", "/integrations/scripts/create", script_request(c), immuta)
    check(status == 200, f"{c['key']}: scripts/create {status} {sql[:300]}")
    if c["technology"] == "Snowflake":
        # One multi-statement request (MULTI_STATEMENT_COUNT=0), async, then poll the handle.
        sf = {
            "Authorization": f"Bearer {SECRET_ENV['BENCH_SF_PAT']}",
            "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN",
        }
        body = {"statement": sql, "timeout": 600, "warehouse": "ADMIN_WH", "role": "ACCOUNTADMIN",
                "parameters": {"MULTI_STATEMENT_COUNT": "0"}}
        status, text, _ = http.call("POST", "/api/v2/statements?async=true", body, sf)
        while status == 202:
            handle = json.loads(text)["statementHandle"]
            status, text, _ = http.call("GET", f"/api/v2/statements/{handle}", None, sf)
        check(status == 200, f"{c['key']}: Snowflake script {status} {text[:300]}")
    else:
        # The Statement Execution API takes one statement per call; the default wait_timeout
        # (10 s) answers when the statement has finished.
        dbx = {"Authorization": f"Bearer {SECRET_ENV['BENCH_DBX_PAT']}"}
        warehouse_id = c["httpPath"].rsplit("/", 1)[-1]
        for stmt in split_sql(sql):
            status, text, _ = http.call(
                "POST", "/api/2.0/sql/statements", {"statement": stmt, "warehouse_id": warehouse_id}, dbx
            )
            v = json.loads(text) if status == 200 else {}
            while status == 200 and v["status"]["state"] in ("PENDING", "RUNNING"):
                status, text, _ = http.call("GET", f"/api/2.0/sql/statements/{v['statement_id']}", None, dbx)
                v = json.loads(text) if status == 200 else {}
            check(status == 200 and v["status"]["state"] == "SUCCEEDED", f"{c['key']}: {stmt[:60]}: {text[:300]}")
    reg = registration(c)
    status, text, _ = http.call("POST", "/data/connection/test", reg, immuta)
    check(status == 200, f"{c['key']}: connection/test {status} {text[:300]}")
    status, text, _ = http.call("POST", "/data/connection", reg, immuta)
    check(status == 200, f"{c['key']}: register {status} {text[:300]}")


def b4_by_hand(bins: Path, scale: float, latency: int, keep: bool, dbx_statements: int | None) -> list[Row]:
    n = round(500 * scale)
    with case_dir("B4", keep) as work:
        conns = [conn_data(i) for i in range(n)]
        emu = Emulator(bins / "connctl-emulator", work, "--job-step-ms", "0", "--latency-ms", str(latency))
        try:
            http = Http(emu.url)
            start = time.perf_counter()
            for c in conns:
                by_hand(http, c)
            wall = time.perf_counter() - start
            log = emu.requests()
            stmts = script_statements(emu)
            live = len(emu.admin("GET", "/_emulator/state")["connections"])
        finally:
            emu.stop()
        sf, dbx = (n + 1) // 2, n // 2
        needed = needed_create(sf, dbx, stmts.get("Databricks", dbx_statements or 0))
        row = Row("B4", f"by hand, create {n} conns, serial", wall, count_requests(log), needed, None)
        row.floor = needed * latency / 1000 / 1
        row.notes += [f"{live} connections live afterwards", "by route: " + json.dumps(per_route(log))]
        return [row]


def b5_changed(bins: Path, scale: float, latency: int, keep: bool) -> list[Row]:
    """2,000 managed connections (seed_managed), the YAML then changes the warehouse of 10
    Snowflake ones, and `connctl plan --refresh=changed` is measured: it reads only those 10.

    Its floor adds the plan's local work to the latency floor: the same plan made from the state
    alone (`--refresh=false`, no request) is timed first, since loading, checking and
    fingerprinting 2,000 connections costs more than the 32 requests' share of latency."""
    n = round(2_000 * scale)
    edited = min(10, (n + 1) // 2)
    with case_dir("B5", keep) as work:
        _, emu_state = seed_managed(bins, work, n)
        keys = [f"sf-{i:05d}" for i in range(0, 2 * edited, 2)]
        for f in (work / "connections").glob("*.yaml"):
            text = f.read_text()
            for key in keys:
                head = f"  - key: {key}\n"
                at = text.find(head)
                if at >= 0:
                    cut = text.index("    warehouse: IMMUTA_WH\n", at)
                    text = text[:cut] + text[cut:].replace("IMMUTA_WH\n", "IMMUTA_WH2\n", 1)
            f.write_text(text)
        common = ["plan", "--parallelism", str(PARALLELISM), "--color", "never", "--detailed-exitcode"]
        local = run_connctl(bins / "connctl", work, [*common, "--refresh=false", "connections"], ok=(2,))
        emu = Emulator(
            bins / "connctl-emulator", work,
            "--job-step-ms", "0", "--latency-ms", str(latency), "--state-file", str(emu_state),
        )
        try:
            write_settings(work, emu.url)
            r = run_connctl(bins / "connctl", work, [*common, "--refresh=changed", "connections"], ok=(2,))
            log = emu.requests()
        finally:
            emu.stop()
        # The listing pages of all n, then each edited connection read once (three requests).
        needed = max(1, math.ceil(n / LIST_PAGE)) + 3 * edited
        latency_floor = needed * latency / 1000 / PARALLELISM
        row = Row("B5", f"plan --refresh=changed, {edited} of {n} changed, p={PARALLELISM}",
                  r.wall, count_requests(log), needed, r.rss_mb, r.cpu)
        row.floor = local.wall + latency_floor
        row.target = "<= 35 requests, <= 1.2x floor"
        row.passed = row.requests <= 35 and row.ratio is not None and row.ratio <= 1.2
        summary = next((ln for ln in r.out.splitlines() if ln.startswith("Plan:")), "")
        unread = next((ln for ln in r.out.splitlines() if "were not read" in ln), "")
        row.notes.append(f"{summary or 'plan printed no summary line'} (exit {r.code}); {unread}")
        row.notes.append(
            f"floor = local plan {local.wall:.2f} s (--refresh=false, same inputs) + latency floor "
            f"{latency_floor:.3f} s ({needed} x {latency} ms / {PARALLELISM}); "
            + (f"wall / latency floor alone = {r.wall / latency_floor:.1f}" if latency_floor else "no latency")
        )
        row.notes.append("by route: " + json.dumps(per_route(log)))
        return [row]


def object_paths(per: int) -> list[list[str]]:
    """`per` object paths below a connection, parents first: databases D0.., each with a PUBLIC
    schema holding tables (4 databases x (1 + 1 + 23) = 100 for per=100)."""
    dbs = max(1, per // 25)
    tables = max(0, per // dbs - 2)
    paths: list[list[str]] = []
    for d in range(dbs):
        paths += [[f"D{d}"], [f"D{d}", "PUBLIC"]]
        paths += [[f"D{d}", "PUBLIC", f"T{t:02d}"] for t in range(tables)]
    return paths[:per]


def b6_objects(bins: Path, scale: float, latency: int, keep: bool) -> list[Row]:
    """20 managed connections (seed_managed), each with 100 objects seeded into the emulator's
    tree (admin API: `POST /_emulator/objects/{path}/seed`, found as if crawled) and activated as
    a person does in Immuta's UI (`POST /_emulator/objects/{key}/{db}`, cascading to the schema
    and tables); the YAML lists all 100 per connection as active, and an `apply` (at no latency)
    records them in the state, sending nothing, so the plan finds no change. Then the emulator
    restarts on its --state-file with --latency-ms and `connctl plan` (a full
    refresh: each connection and each listed object read once) is measured.

    Its floor is B5's kind: the same plan's local work (--refresh=false, same inputs, no
    request) plus the latency floor of the requests needed."""
    n = max(1, round(20 * scale))
    per = 100
    with case_dir("B6", keep) as work:
        conns, emu_state = seed_managed(bins, work, n)
        paths = object_paths(per)
        listed = "    objects:\n" + "".join(f"      - path: {'/'.join(p)}\n        active: true\n" for p in paths)
        for f in (work / "connections").glob("*.yaml"):
            text = f.read_text()
            heads = [f"  - key: {c['key']}\n" for c in conns]
            # Each entry ends where the next begins (or at the end of the file).
            for head in heads:
                at = text.find(head)
                if at < 0:
                    continue
                nxt = min((i for i in (text.find(h, at + 1) for h in heads) if i > at), default=len(text))
                text = text[:nxt] + listed + text[nxt:]
            f.write_text(text)
        emu = Emulator(bins / "connctl-emulator", work, "--job-step-ms", "0", "--state-file", str(emu_state))
        try:
            leaves = ["/".join(p) for p in paths if not any(q[: len(p)] == p and len(q) > len(p) for q in paths)]
            for c in conns:
                key = c["key"]
                emu.admin("POST", f"/_emulator/objects/{key}/seed", {"children": leaves, "crawled": True})
                for p in paths:
                    if len(p) == 1:
                        emu.admin("POST", f"/_emulator/objects/{key}/{p[0]}", {"isActive": True})
            # The state learns the listed objects (`= record` rows; nothing is sent), as after
            # the apply that set them, so the measured plan has no change.
            write_settings(work, emu.url)
            run_connctl(
                bins / "connctl", work,
                ["apply", "--auto-approve", "--skip-preflight", "--parallelism", str(PARALLELISM), "connections"],
            )
            check(not emu.admin("GET", "/_emulator/state")["settingsRequests"], "B6: the recording apply sent settings")
        finally:
            emu.stop()
        # The state names the tenant it was written for; the restarted emulator has another port.
        state_path = work / ".connctl" / "state.json"
        st = json.loads(state_path.read_text())
        st.pop("tenant", None)
        state_path.write_text(json.dumps(st, indent=2))
        common = ["plan", "--parallelism", str(PARALLELISM), "--color", "never", "--detailed-exitcode"]
        local = run_connctl(bins / "connctl", work, [*common, "--refresh=false", "connections"], ok=(0, 2))
        emu = Emulator(
            bins / "connctl-emulator", work,
            "--job-step-ms", "0", "--latency-ms", str(latency), "--state-file", str(emu_state),
        )
        try:
            write_settings(work, emu.url)
            r = run_connctl(bins / "connctl", work, [*common, "connections"], ok=(0, 2))
            log = emu.requests()
        finally:
            emu.stop()
        objects = n * len(paths)
        # The listing page, each connection's three reads, then each listed object read once.
        needed = needed_refresh(n) + objects
        latency_floor = needed * latency / 1000 / PARALLELISM
        row = Row("B6", f"plan, {objects} listed objects in {n} conns, p={PARALLELISM}",
                  r.wall, count_requests(log), needed, r.rss_mb, r.cpu)
        row.floor = local.wall + latency_floor
        row.target = "<= 1.2x floor"
        # A plan that does not read every listed object is fast for the wrong reason.
        row.passed = r.code == 0 and row.requests >= needed and row.ratio is not None and row.ratio <= 1.2
        summary = next((ln for ln in r.out.splitlines() if ln.startswith(("Plan:", "No changes"))), "")
        row.notes.append(f"{summary or 'plan printed no summary line'} (exit {r.code}; 0 expected: no change)")
        if row.requests < needed:
            row.notes.append(f"only {row.requests} of the {needed} requests needed were made: listed objects were not read")
        row.notes.append(
            f"floor = local plan {local.wall:.2f} s (--refresh=false, same inputs) + latency floor "
            f"{latency_floor:.3f} s ({needed} x {latency} ms / {PARALLELISM})"
        )
        row.notes.append(in_flight(row.requests, latency, r.wall))
        row.notes.append("by route: " + json.dumps(per_route(log)))
        return [row]


# ----------------------------------------------------------------------------------------------


class case_dir:
    """A fresh temporary folder for one case (kept with --keep)."""

    def __init__(self, name: str, keep: bool):
        self.name, self.keep = name, keep

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix=f"connctl-bench-{self.name}-"))
        return self.path

    def __exit__(self, *exc) -> None:
        if self.keep:
            print(f"  ({self.name} kept in {self.path})", file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def check(ok: bool, message: str) -> None:
    if not ok:
        raise RuntimeError(message)


def fmt(v, spec: str, none: str = "n/a") -> str:
    return none if v is None else format(v, spec)


def print_table(rows: list[Row], latency: int) -> None:
    head = ["case", "what", "wall s", "requests", "needed", "peak RSS MB", "CPU s", "floor s", "wall/floor",
            "store req/conn", "store KB/conn", "target", "result"]
    lines = []
    for r in rows:
        lines.append([
            r.case, r.what, f"{r.wall:.2f}", fmt(r.requests, "d"), fmt(r.needed, "d"),
            fmt(r.rss_mb, ".1f"), fmt(r.cpu, ".2f"), fmt(r.floor, ".2f"), fmt(r.ratio, ".2f"),
            fmt(r.store_requests, ".2f"), fmt(r.store_kb, ".1f"), r.target,
            {True: "PASS", False: "MISS", None: "-"}[r.passed],
        ])
    print(f"\nconnctl bench (latency {latency} ms, parallelism {PARALLELISM}; floor = needed x latency / parallelism)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for ln in lines:
        print("| " + " | ".join(ln) + " |")
    print()
    for r in rows:
        for note in r.notes:
            if note:
                print(f"  {r.case}: {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See docs/performance.md.")
    ap.add_argument("--quick", action="store_true", help="sizes / 10: a smoke run")
    ap.add_argument("--scale", type=float, help="multiply every size by F (overrides --quick)")
    ap.add_argument("--only", action="append", choices=["B1", "B2", "B3", "B3p", "B3s", "B4", "B5", "B6"], help="run only these cases (repeatable)")
    ap.add_argument("--latency-ms", type=int, default=25, help="emulator latency for B2-B6 (default 25)")
    ap.add_argument("--bin-dir", help="folder with connctl and connctl-emulator (default: $CARGO_TARGET_DIR/release)")
    ap.add_argument("--keep", action="store_true", help="keep each case's temporary folder")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    ap.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    args = ap.parse_args(argv)

    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    bins = bin_dir(args.bin_dir)
    for exe in ("connctl", "connctl-emulator"):
        if not (bins / exe).is_file():
            print(f"missing {bins / exe}: cargo build --release -p connctl -p connctl-emulator", file=sys.stderr)
            return 1
    only = set(args.only or ["B1", "B2", "B3", "B3p", "B3s", "B4", "B5", "B6"])
    lat = args.latency_ms
    rows: list[Row] = []
    b3_row, dbx_statements = None, None
    for case in ("B1", "B2", "B3", "B3p", "B3s", "B4", "B5", "B6"):
        if case not in only:
            continue
        print(f"running {case} ...", file=sys.stderr, flush=True)
        if case == "B1":
            rows += b1_local(bins, scale, args.keep)
        elif case == "B2":
            rows += b2_refresh(bins, scale, lat, args.keep)
        elif case == "B5":
            rows += b5_changed(bins, scale, lat, args.keep)
        elif case == "B6":
            rows += b6_objects(bins, scale, lat, args.keep)
        elif case == "B3":
            got, dbx_statements = b3_apply(bins, scale, lat, args.keep)
            b3_row = got[0]
            rows += got
        elif case == "B3p":
            rows += b3p_preflight(bins, scale, lat, args.keep)
        elif case == "B3s":
            rows += b3s_s3_state(bins, scale, lat, args.keep)
            if b3_row is not None:
                rows[-1].passed = rows[-1].wall <= 1.3 * b3_row.wall
                rows[-1].notes.insert(0, f"B3s / B3 wall = {rows[-1].wall / b3_row.wall:.2f}x")
        else:
            b4 = b4_by_hand(bins, scale, lat, args.keep, dbx_statements)[0]
            b4.target = ">= 20x B3 wall"
            if b3_row is not None:
                factor = b4.wall / b3_row.wall
                b4.notes.insert(0, f"B4 / B3 = {factor:.1f}x (connctl B3 / B4 = {1 / factor:.3f})")
                b4.passed = factor >= 20
            rows.append(b4)
    print_table(rows, lat)
    if args.json:
        Path(args.json).write_text(json.dumps([{**r.__dict__, "ratio": r.ratio} for r in rows], indent=2))
    missed = [r.case for r in rows if r.passed is False]
    return 3 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
