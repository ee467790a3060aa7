//! Lost answers and redirects: every write endpoint connctl uses × every way a hostile network
//! loses or mangles its answer (reset, timeout, late delivery, 5xx, an HTML 502, a truncated or
//! non-JSON 200, a redirect to another host), the write applied before the answer was lost or
//! not. `apply` is re-run until the plan is empty (bounded), and the books must balance: no
//! duplicate registration, no false success, no lost cleanup script, no bulkId lost without a
//! journal line, no canary secret anywhere, nothing sensitive sent to the other host. Reads
//! may follow a redirect to the same origin only.
//!
//! Small size in `make test`; every kind × applied/not × every status and redirect code with
//! `CONNCTL_SOAK=1` (`make soak`). See docs/reliability.md.

use std::collections::BTreeMap;
use std::path::Path;

use connctl_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::{TestEnv, soak};

// ---------------------------------------------------------------------------------------------
// Canaries: every secret the runs hold.

const API_KEY: &str = "canary-lost-api-key-8a1";
const SF_PASSWORD: &str = "canary-sf-password-7c1";
const DBX_TOKEN: &str = "canary-dbx-token-7c4";
const SF_PAT: &str = "canary-executor-sf-pat-8a2";
const DBX_PAT: &str = "canary-executor-dbx-pat-8a3";
const CANARIES: [&str; 5] = [API_KEY, SF_PASSWORD, DBX_TOKEN, SF_PAT, DBX_PAT];

/// Where `text` holds a canary (any of them, or the `canary-` prefix), with context.
fn leak(text: &str) -> Option<String> {
    CANARIES.iter().chain(&["canary-"]).find_map(|needle| {
        let at = text.find(needle)?;
        let from = (0..=at.saturating_sub(120))
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let to = ((at + 120).min(text.len())..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        Some(format!("{needle}: …{}…", &text[from..to]))
    })
}

// ---------------------------------------------------------------------------------------------
// Fault kinds.

/// One way to lose or mangle an answer, as the emulator's admin API programs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reset,
    Timeout,
    Late,
    Status(u16),
    Html502,
    Truncated,
    NonJson200,
    Redirect(u16),
}

impl Kind {
    fn program(self, method: &str, path: &str, applied: bool) -> Value {
        let mut v = json!({"method": method, "path": path, "count": 1, "applied": applied});
        // Longer than the client waits: 1 s for Immuta (connctl.toml below), 60 s for the
        // warehouse executors.
        let hold = if is_warehouse(path) { 61_000 } else { 1_500 };
        let (kind, extra) = match self {
            Kind::Reset => ("reset", None),
            Kind::Timeout => ("timeout", Some(("delay_ms", json!(hold)))),
            Kind::Late => ("late", Some(("delay_ms", json!(hold)))),
            Kind::Status(code) => ("status", Some(("status", json!(code)))),
            Kind::Html502 => ("html502", None),
            Kind::Truncated => ("truncated", None),
            Kind::NonJson200 => ("nonjson200", None),
            Kind::Redirect(code) => ("redirect", Some(("status", json!(code)))),
        };
        v["kind"] = json!(kind);
        if let Some((k, x)) = extra {
            v[k] = x;
        }
        v
    }

    /// Whether the client waits out its request timeout (60 s for the warehouse executors).
    fn waits_out_the_timeout(self) -> bool {
        matches!(self, Kind::Timeout | Kind::Late)
    }
}

/// Every kind; `Late` is always applied (a late answer to a write that happened), the others
/// both ways at full size.
fn all_kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::Reset, Kind::Timeout, Kind::Late];
    kinds.extend([500, 502, 503, 504].map(Kind::Status));
    kinds.extend([Kind::Html502, Kind::Truncated, Kind::NonJson200]);
    kinds.extend([301, 302, 303, 307, 308].map(Kind::Redirect));
    kinds
}

/// The small set: one of each family; status and redirect codes rotate with `round`.
fn small_kinds(round: usize) -> Vec<Kind> {
    vec![
        Kind::Reset,
        Kind::Timeout,
        Kind::Late,
        Kind::Status([500, 502, 503, 504][round % 4]),
        Kind::Html502,
        Kind::Truncated,
        Kind::NonJson200,
        Kind::Redirect([301, 302, 303, 307, 308][round % 5]),
    ]
}

// ---------------------------------------------------------------------------------------------
// Scenarios: what the YAML asks for, and so which write endpoints are used.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// New connections: script → execute → test → register.
    Create,
    /// A connection field, an integration field and a setting change on live connections.
    Update,
    /// An identity change: delete script → DELETE → cleanup → create again.
    Replace,
    /// Connections leave the YAML; `apply --prune` deletes them and saves their cleanup.
    Prune,
    /// Data objects listed under live connections: a database activated, a table deactivated
    /// (each cascading), a schema's `activateNewChildren` turned off, each a
    /// `PUT /data/settings/{path}`.
    Objects,
}

const SF_STATEMENTS: &str = "/api/v2/statements";
const DBX_STATEMENTS: &str = "/api/2.0/sql/statements";

fn is_warehouse(path: &str) -> bool {
    path == SF_STATEMENTS || path == DBX_STATEMENTS
}

impl Scenario {
    /// The write endpoints (method, path pattern) the faulted run uses.
    fn endpoints(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Scenario::Create => &[
                ("POST", "/integrations/scripts/create"),
                ("POST", "/data/connection/test"),
                ("POST", "/data/connection"),
                ("POST", SF_STATEMENTS),
                ("POST", DBX_STATEMENTS),
            ],
            Scenario::Update => &[
                ("PUT", "/data/connection/*"),
                ("POST", "/integrations/*/scripts/edit"),
                ("PUT", "/integrations/*"),
                ("PUT", "/data/settings/*"),
                ("POST", SF_STATEMENTS),
                ("POST", DBX_STATEMENTS),
            ],
            Scenario::Replace => &[
                ("POST", "/integrations/*/scripts/delete"),
                ("DELETE", "/data/object/*"),
                ("POST", SF_STATEMENTS),
                ("POST", DBX_STATEMENTS),
                ("POST", "/data/connection"),
            ],
            Scenario::Prune => &[
                ("POST", "/integrations/*/scripts/delete"),
                ("DELETE", "/data/object/*"),
            ],
            // One pattern per depth: database (catalog), schema, table.
            Scenario::Objects => &[
                ("PUT", "/data/settings/*/*"),
                ("PUT", "/data/settings/*/*/*"),
                ("PUT", "/data/settings/*/*/*/*"),
            ],
        }
    }

    /// The YAML before (`None`: nothing applied first) and the YAML the faulted runs apply.
    fn specs(self, n: usize) -> (Option<String>, String) {
        let v1 = Version::default();
        match self {
            Scenario::Create => (None, spec(n, &v1)),
            Scenario::Update => (Some(spec(n, &v1)), spec(n, &Version { changed: true, ..v1 })),
            Scenario::Replace => (Some(spec(n, &v1)), spec(n, &Version { replaced: true, ..v1 })),
            // Half of the connections leave.
            Scenario::Prune => (Some(spec(n, &v1)), spec(n / 2, &v1)),
            Scenario::Objects => (Some(spec(n, &v1)), spec(n, &Version { objects: true, ..v1 })),
        }
    }

    /// The update scenario sets connections active: `--allow-cascade` (the gate is tested in
    /// test_immuta_truth; here it would only stop the run before any fault is met).
    fn apply_args(self) -> &'static [&'static str] {
        match self {
            Scenario::Prune => &[
                "apply",
                "--auto-approve",
                "--prune",
                "--max-deletes",
                "100",
                "--allow-cascade",
                "c.yaml",
            ],
            _ => &[
                "apply",
                "--auto-approve",
                "--max-deletes",
                "100",
                "--allow-cascade",
                "c.yaml",
            ],
        }
    }

    fn plan_args(self) -> &'static [&'static str] {
        match self {
            Scenario::Prune => &[
                "plan",
                "--prune",
                "--max-deletes",
                "100",
                "--detailed-exitcode",
                "c.yaml",
            ],
            _ => &["plan", "--max-deletes", "100", "--detailed-exitcode", "c.yaml"],
        }
    }

    /// Successful registrations each kept key must have in the end (the setup's included).
    fn registrations(self) -> u64 {
        match self {
            Scenario::Replace => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Version {
    /// warehouse / httpPath (connection), audit / workspaceIds (integration), isActive (settings).
    changed: bool,
    /// database / catalog: the identity.
    replaced: bool,
    /// `objects:` under each connection (its database or catalog on, a schema's new children
    /// off, a table off).
    objects: bool,
}

/// `n` connections alternating Snowflake (SQL API executor) and Databricks (Statement
/// Execution API executor).
fn spec(n: usize, v: &Version) -> String {
    let mut s = String::from("version: 1\nconnections:\n");
    let id = if v.replaced { "B" } else { "A" };
    for i in 0..n {
        if i % 2 == 0 {
            s.push_str(&format!(
                "  - key: sf-{i}
    technology: Snowflake
    host: acct{i}.snowflakecomputing.com
    warehouse: {wh}
    database: IMMUTA_{i}_{id}
    role: R
    settings: {{ isActive: {active} }}
    audit: {{ enabled: {active} }}
    auth: {{ type: userPassword, username: SYS{i}, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}
",
                wh = if v.changed { "WH2" } else { "WH" },
                active = v.changed,
            ));
            if v.objects {
                s.push_str(&objects(&format!("IMMUTA_{i}_{id}"), "PUBLIC", "ORDERS"));
            }
        } else {
            s.push_str(&format!(
                "  - key: dbx-{i}
    technology: Databricks
    workspaceUrl: dbc-{i}.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/w{i}{path}
    catalog: immuta_{i}_{id}
    settings: {{ isActive: {active} }}
    workspaceIds: [\"{ws}\"]
    auth: {{ type: token, token: {{ env: CONNCTL_TEST_DBX_TOKEN }} }}
",
                path = if v.changed { "b" } else { "" },
                active = v.changed,
                ws = if v.changed { "42" } else { "41" },
            ));
            if v.objects {
                s.push_str(&objects(&format!("immuta_{i}_{id}"), "default", "orders"));
            }
        }
    }
    s
}

/// The `objects:` of one connection, at each depth the emulator's registration creates.
fn objects(db: &str, schema: &str, table: &str) -> String {
    format!(
        "    objects:
      - path: {db}
        active: true
      - path: {db}/{schema}
        activateNewChildren: false
      - path: {db}/{schema}/{table}
        active: false
"
    )
}

// ---------------------------------------------------------------------------------------------
// One round: set up, program the faults, apply until converged, balance the books.

/// What a round found; every count must be zero.
#[derive(Debug, Default)]
struct Books {
    runs: usize,
    faults_met: usize,
    duplicates: Vec<String>,
    false_success: Vec<String>,
    lost_cleanup: Vec<String>,
    lost_bulk_ids: Vec<String>,
    leaks: Vec<String>,
    other_host: Vec<String>,
    not_converged: Vec<String>,
    panics: Vec<String>,
}

impl Books {
    fn add(&mut self, other: Books) {
        self.runs += other.runs;
        self.faults_met += other.faults_met;
        for (mine, theirs) in [
            (&mut self.duplicates, other.duplicates),
            (&mut self.false_success, other.false_success),
            (&mut self.lost_cleanup, other.lost_cleanup),
            (&mut self.lost_bulk_ids, other.lost_bulk_ids),
            (&mut self.leaks, other.leaks),
            (&mut self.other_host, other.other_host),
            (&mut self.not_converged, other.not_converged),
            (&mut self.panics, other.panics),
        ] {
            mine.extend(theirs);
        }
    }

    fn summary(&self, suite: &str, rounds: usize) -> String {
        format!(
            "{suite}: {rounds} rounds, {} apply runs, {} faults met; duplicates: {}, false success: {}, \
             lost cleanup scripts: {}, bulkIds lost without a journal line: {}, canary leaks: {}, \
             sensitive requests at the other host: {}, not converged: {}, panics: {}",
            self.runs,
            self.faults_met,
            self.duplicates.len(),
            self.false_success.len(),
            self.lost_cleanup.len(),
            self.lost_bulk_ids.len(),
            self.leaks.len(),
            self.other_host.len(),
            self.not_converged.len(),
            self.panics.len(),
        )
    }

    fn assert_balanced(&self, suite: &str, rounds: usize) {
        let summary = self.summary(suite, rounds);
        eprintln!("{summary}");
        let mut problems = Vec::new();
        for (what, list) in [
            ("duplicate registrations", &self.duplicates),
            ("false success", &self.false_success),
            ("lost cleanup scripts", &self.lost_cleanup),
            ("bulkIds lost without a journal line", &self.lost_bulk_ids),
            ("canary leaks", &self.leaks),
            ("sensitive requests at the other host", &self.other_host),
            ("not converged", &self.not_converged),
            ("panics", &self.panics),
        ] {
            for item in list {
                problems.push(format!("[{what}] {item}"));
            }
        }
        assert!(
            problems.is_empty(),
            "the books do not balance ({} problems):\n\n{}",
            problems.len(),
            problems.join("\n\n")
        );
    }
}

/// A test folder whose Immuta client gives up after 1 s (so `timeout` and `late` cost little),
/// with canaries as every secret and the API key.
fn env() -> TestEnv {
    let mut env = TestEnv::with_emulator(EmulatorConfig {
        api_key: API_KEY.into(),
        job_step_ms: 5,
        ..EmulatorConfig::default()
    });
    let settings = std::fs::read_to_string(env.path("connctl.toml")).unwrap();
    std::fs::write(
        env.path("connctl.toml"),
        settings.replacen("[immuta]\n", "[immuta]\ntimeout_secs = 1\n", 1),
    )
    .unwrap();
    env.set_env("TEST_IMMUTA_KEY", API_KEY);
    env.set_env("TEST_SF_PAT", SF_PAT);
    env.set_env("TEST_DBX_PAT", DBX_PAT);
    env
}

/// A fault on one endpoint: what to program.
#[derive(Debug, Clone)]
struct Fault {
    method: &'static str,
    path: &'static str,
    kind: Kind,
    applied: bool,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} on {} {} ({})",
            self.kind,
            self.method,
            self.path,
            if self.applied { "applied" } else { "not applied" }
        )
    }
}

/// Runs one round of `scenario` with `n` connections under `faults`; returns its books.
fn round(scenario: Scenario, n: usize, faults: &[Fault], max_runs: usize) -> Books {
    let env = env();
    let mut books = Books::default();
    let what = format!(
        "{scenario:?} of {n} under [{}]",
        faults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let (before, after) = scenario.specs(n);
    let check_output = |books: &mut Books, args: &[&str], out: &crate::support::Output| {
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if let Some(l) = leak(text) {
                books
                    .leaks
                    .push(format!("{what}: `connctl {}` {stream}: {l}", args.join(" ")));
            }
        }
        if out.stderr.contains("panicked") {
            books
                .panics
                .push(format!("{what}: `connctl {}`:\n{}", args.join(" "), out.stderr));
        }
    };

    if let Some(before) = before {
        env.write("c.yaml", &before);
        let out = env.run(&["apply", "--auto-approve", "--allow-cascade", "c.yaml"]);
        assert_eq!(out.code, 0, "{what}: setup:\n{}\n{}", out.stdout, out.stderr);
    }
    let setup_bulks: Vec<String> = emulator_state(&env)["issuedBulkIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bulkId"].as_str().unwrap().to_owned())
        .collect();
    env.admin("DELETE", "/_emulator/requests", Value::Null);
    for f in faults {
        env.admin(
            "POST",
            "/_emulator/faults",
            f.kind.program(f.method, f.path, f.applied),
        );
    }

    env.write("c.yaml", &after);
    let keys: Vec<String> = (0..after.matches("  - key: ").count())
        .map(|i| {
            if i % 2 == 0 {
                format!("sf-{i}")
            } else {
                format!("dbx-{i}")
            }
        })
        .collect();
    let pruned: Vec<String> = match scenario {
        Scenario::Prune => (keys.len()..n)
            .map(|i| {
                if i % 2 == 0 {
                    format!("sf-{i}")
                } else {
                    format!("dbx-{i}")
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut converged = false;
    let mut last = String::new();
    while books.runs < max_runs {
        books.runs += 1;
        let args = scenario.apply_args();
        let out = env.run(args);
        check_output(&mut books, args, &out);
        last = format!("exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
        if out.code != 0 && out.code != 1 {
            books
                .false_success
                .push(format!("{what}: run {}: unexpected exit: {last}", books.runs));
        }
        if out.code != 0 {
            continue;
        }
        // Exit 0 claims everything was done: Immuta must agree.
        let live = live_keys(&env);
        for k in &keys {
            if !live.contains(k) {
                books.false_success.push(format!(
                    "{what}: run {} exited 0 but Immuta has no `{k}`:\n{last}",
                    books.runs
                ));
            }
        }
        for k in &pruned {
            if live.contains(k) {
                books.false_success.push(format!(
                    "{what}: run {} exited 0 but Immuta still has pruned `{k}`:\n{last}",
                    books.runs
                ));
            }
        }
        let plan_args = scenario.plan_args();
        let plan = env.run(plan_args);
        check_output(&mut books, plan_args, &plan);
        match plan.code {
            0 => {
                converged = true;
                break;
            }
            // A plan that shows a change right after a successful apply: the apply lied.
            _ => books.false_success.push(format!(
                "{what}: run {} exited 0 but the plan is not empty (exit {}):\n{}\n{}\n--- the apply:\n{last}",
                books.runs, plan.code, plan.stdout, plan.stderr
            )),
        }
    }
    if !converged {
        books.not_converged.push(format!(
            "{what}: not converged in {max_runs} runs; the last:\n{last}"
        ));
    }
    env.admin("DELETE", "/_emulator/faults", Value::Null);

    let log = match env.admin("GET", "/_emulator/requests", Value::Null) {
        Value::Array(a) => a,
        other => panic!("request log: {other}"),
    };
    books.faults_met = log.iter().filter(|r| r["fault"].is_string()).count();
    let emu = emulator_state(&env);
    let state = if env.path(".connctl/state.json").exists() {
        env.state()
    } else {
        json!({"connections": {}})
    };

    // Duplicates: each kept key registered exactly as often as the scenario asks; no 409 from
    // a registration connctl repeated.
    for k in &keys {
        let got = emu["registrations"][k].as_u64().unwrap_or(0);
        if got > scenario.registrations() {
            books.duplicates.push(format!(
                "{what}: `{k}` registered {got} times (expected {})",
                scenario.registrations()
            ));
        }
    }
    for r in log
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/data/connection")
    {
        if r["status"] == 409 || r["handled"] == 409 {
            books.duplicates.push(format!(
                "{what}: a registration was repeated for an existing key: {r}"
            ));
        }
    }

    // Lost cleanup scripts: every integration deleted in this round had one of its cleanup
    // scripts run to the end, or saved where a person finds it.
    let live_integrations: Vec<&str> = emu["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    let saved = saved_text(env.dir.path());
    let mut cleanups: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for s in emu["scripts"].as_array().unwrap() {
        if s["kind"] == "Delete"
            && let Some(id) = s["integrationId"].as_str()
            && !live_integrations.contains(&id)
        {
            cleanups.entry(id).or_default().push(s);
        }
    }
    for (id, scripts) in &cleanups {
        let done = scripts.iter().any(|s| {
            s["executed"] == s["statements"] || s["id"].as_str().is_some_and(|sid| saved.contains(sid))
        });
        if !done {
            books.lost_cleanup.push(format!(
                "{what}: integration {id} was deleted, but none of its {} cleanup script(s) ran or was saved: {}",
                scripts.len(),
                Value::from(scripts.iter().map(|s| (*s).clone()).collect::<Vec<_>>())
            ));
        }
    }
    // Every connection that left Immuta had its cleanup script produced.
    let deleted_here: Vec<&String> = pruned.iter().filter(|k| !live_keys(&env).contains(*k)).collect();
    if scenario == Scenario::Prune && cleanups.len() < deleted_here.len() {
        books.lost_cleanup.push(format!(
            "{what}: {} connections deleted but only {} integrations have a cleanup script",
            deleted_here.len(),
            cleanups.len()
        ));
    }

    // bulkIds: each one issued in this round, for a connection connctl still manages, is in
    // the state, or the journal holds the intent of the write that got it.
    let conns = state["connections"].as_object().cloned().unwrap_or_default();
    for b in emu["issuedBulkIds"].as_array().unwrap() {
        let id = b["bulkId"].as_str().unwrap();
        if setup_bulks.iter().any(|s| s == id) {
            continue;
        }
        let (key, origin) = (b["key"].as_str().unwrap(), b["origin"].as_str().unwrap());
        let Some(c) = conns.get(key) else { continue };
        if !accounted(c, id, origin) {
            books.lost_bulk_ids.push(format!(
                "{what}: bulkId {id} ({origin} of `{key}`) is neither in the state nor journaled: {c}"
            ));
        }
    }

    // No canary in any file connctl wrote (saved scripts may hold what Immuta's script holds:
    // they are checked for their mode only).
    for (path, text) in files(&env.path(".connctl")) {
        if path.extension().is_some_and(|e| e == "sql") {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                if mode != 0o600 {
                    books
                        .leaks
                        .push(format!("{what}: {} has mode {mode:o}", path.display()));
                }
            }
            continue;
        }
        if let Some(l) = leak(&text) {
            books.leaks.push(format!("{what}: {}: {l}", path.display()));
        }
    }

    books.other_host.extend(
        sensitive_at_other_host(&env)
            .into_iter()
            .map(|s| format!("{what}: {s}")),
    );
    books
}

fn emulator_state(env: &TestEnv) -> Value {
    env.admin("GET", "/_emulator/state", Value::Null)
}

fn live_keys(env: &TestEnv) -> Vec<String> {
    emulator_state(env)["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["connectionKey"].as_str().map(str::to_owned))
        .collect()
}

/// Whether bulkId `id` (from an `origin` request) is in connection `c`'s state, or its journal
/// holds the intent of that write (so a person can tell a lost answer from drift).
fn accounted(c: &Value, id: &str, origin: &str) -> bool {
    if c.to_string().contains(id) {
        return true;
    }
    let journal = c["journal"].as_array().cloned().unwrap_or_default();
    journal.iter().any(|j| {
        let step = j["step"].as_str().unwrap_or_default();
        let intent = j["phase"] == "intent";
        let confirmed = j["detail"]
            .as_str()
            .is_some_and(|d| d.contains("confirmed by reading"));
        match origin {
            "register" => step == "register" && (intent || confirmed),
            "update" => {
                intent
                    && (step.contains("connection")
                        || (step.contains("update") && !step.contains("settings")))
            }
            "settings" => intent && step.contains("settings"),
            _ => intent,
        }
    })
}

/// Every file under `dir` with its text (lossy).
fn files(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out
}

/// Everything connctl saved in the test folder, concatenated (to find a saved script's id).
fn saved_text(dir: &Path) -> String {
    files(dir)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("c.yaml") && !p.ends_with("connctl.toml"))
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Requests at the other host that carry a credential or a secret.
fn sensitive_at_other_host(env: &TestEnv) -> Vec<String> {
    let other = env.admin("GET", "/_emulator/other-host", Value::Null);
    let mut found = Vec::new();
    for r in other["requests"].as_array().unwrap() {
        let text = r.to_string();
        let credential = r["headers"]
            .as_object()
            .map(|h| {
                h.keys()
                    .filter(|k| ["authorization", "proxy-authorization", "cookie"].contains(&k.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !credential.is_empty() {
            found.push(format!(
                "the other host received {} {} with {credential:?}",
                r["method"], r["path"]
            ));
        }
        if let Some(l) = leak(&text) {
            found.push(format!(
                "the other host received {} {}: {l}",
                r["method"], r["path"]
            ));
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The lost-answer suite: per scenario, rounds in which every endpoint of the scenario meets a
// fault, the kinds rotating over the endpoints so that each endpoint meets each kind.

fn lost_answer_suite(scenario: Scenario) {
    let endpoints = scenario.endpoints();
    let (n, max_runs) = if soak() { (6, 8) } else { (2, 6) };
    // Small: each endpoint meets each kind family once, the write applied (the interesting
    // case; a redirect is not). Full: every kind, applied and not.
    let plan: Vec<(Vec<Kind>, bool)> = if soak() {
        let kinds = all_kinds();
        (0..kinds.len() * 2)
            .map(|r| (kinds.clone(), r % 2 == 0))
            .collect()
    } else {
        (0..8).map(|r| (small_kinds(r), true)).collect()
    };
    let mut books = Books::default();
    for (r, (kinds, applied)) in plan.iter().enumerate() {
        let rotation = r / if soak() { 2 } else { 1 };
        let faults: Vec<Fault> = endpoints
            .iter()
            .enumerate()
            .map(|(e, (method, path))| {
                let mut kind = kinds[(rotation + e) % kinds.len()];
                // The warehouse executors wait 60 s for an answer: their timeout and late
                // cases run at full size only, and only where the scripts are created.
                if is_warehouse(path)
                    && kind.waits_out_the_timeout()
                    && !(soak() && scenario == Scenario::Create)
                {
                    kind = Kind::Reset;
                }
                Fault {
                    method,
                    path,
                    kind,
                    // A late answer is one to a write that happened; a redirect happens before.
                    applied: match kind {
                        Kind::Late => true,
                        Kind::Redirect(_) => false,
                        _ => *applied,
                    },
                }
            })
            .collect();
        books.add(round(scenario, n, &faults, max_runs));
    }
    books.assert_balanced(&format!("lost answers ({scenario:?})"), plan.len());
    assert!(books.faults_met > 0, "no fault was met; the suite proves nothing");
}

#[test]
fn lost_answers_on_create() {
    lost_answer_suite(Scenario::Create);
}

#[test]
fn lost_answers_on_update() {
    lost_answer_suite(Scenario::Update);
}

#[test]
fn lost_answers_on_replace() {
    lost_answer_suite(Scenario::Replace);
}

#[test]
fn lost_answers_on_prune() {
    lost_answer_suite(Scenario::Prune);
}

#[test]
fn lost_answers_on_objects() {
    lost_answer_suite(Scenario::Objects);
}

// ---------------------------------------------------------------------------------------------
// The redirect suite: each redirect code on each write endpoint (to the other host), and on
// the reads (to the other host: refused; to the same origin: followed).

#[test]
fn redirects_on_writes_send_nothing_sensitive_and_claim_nothing() {
    let mut books = Books::default();
    let mut rounds = 0;
    let codes = [301, 302, 303, 307, 308];
    for scenario in [
        Scenario::Create,
        Scenario::Update,
        Scenario::Replace,
        Scenario::Prune,
        Scenario::Objects,
    ] {
        for code in codes {
            let faults: Vec<Fault> = scenario
                .endpoints()
                .iter()
                .map(|(method, path)| Fault {
                    method,
                    path,
                    kind: Kind::Redirect(code),
                    applied: false,
                })
                .collect();
            rounds += 1;
            books.add(round(scenario, 2, &faults, 6));
        }
    }
    books.assert_balanced("redirects on writes", rounds);
    assert!(
        books.faults_met > 0,
        "no redirect was met; the suite proves nothing"
    );
}

/// The reads of a plan and of `apply --wait`.
const READS: [&str; 4] = ["/data/connection/*", "/data/object/*", "/integrations/*", "/jobs"];

/// Applied connections, then a same-origin redirect on every read: plan and apply follow it
/// and succeed; then a redirect to the other host on one read at a time: the command fails,
/// naming where it was sent, and the other host gets nothing sensitive.
#[test]
fn redirects_on_reads_same_origin_only() {
    let env = env();
    env.write("c.yaml", &spec(2, &Version::default()));
    let out = env.run(&["apply", "--auto-approve", "--allow-cascade", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let mut leaks = Vec::new();
    let mut note = |args: &[&str], out: &crate::support::Output| {
        for text in [&out.stdout, &out.stderr] {
            if let Some(l) = leak(text) {
                leaks.push(format!("`connctl {}`: {l}", args.join(" ")));
            }
        }
    };

    for code in [301, 302, 303, 307, 308] {
        for path in READS {
            env.admin(
                "POST",
                "/_emulator/faults",
                json!({"method": "GET", "path": path, "kind": "redirect", "status": code, "to": "same", "count": 2}),
            );
        }
        let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
        note(&["plan"], &plan);
        assert_eq!(
            plan.code, 0,
            "a same-origin {code} on a read is followed:\n{}\n{}",
            plan.stdout, plan.stderr
        );
        env.admin("DELETE", "/_emulator/faults", Value::Null);
    }
    // A change whose apply waits for its job, with same-origin redirects on the job reads.
    env.write(
        "c.yaml",
        &spec(
            2,
            &Version {
                changed: true,
                ..Version::default()
            },
        ),
    );
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "GET", "path": "/jobs", "kind": "redirect", "status": 307, "to": "same", "count": 3}),
    );
    let out = env.run(&["apply", "--auto-approve", "--allow-cascade", "--wait", "c.yaml"]);
    note(&["apply", "--wait"], &out);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    env.admin("DELETE", "/_emulator/faults", Value::Null);

    let other = env.emulator.other_host_url();
    let mut refused = 0;
    for code in [301, 302, 303, 307, 308] {
        for path in ["/data/connection/*", "/data/object/*", "/integrations/*"] {
            env.admin(
                "POST",
                "/_emulator/faults",
                json!({"method": "GET", "path": path, "kind": "redirect", "status": code, "count": 50}),
            );
            let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
            note(&["plan"], &plan);
            env.admin("DELETE", "/_emulator/faults", Value::Null);
            assert_eq!(
                plan.code, 1,
                "a {code} to another origin on GET {path} must fail the plan:\n{}\n{}",
                plan.stdout, plan.stderr
            );
            // In a loop over codes and paths, the target's port changing each run.
            assert!(
                plan.stderr.contains(other.trim_start_matches("http://")),
                "the error names the redirect's target ({other}):\n{}",
                plan.stderr
            );
            refused += 1;
        }
    }
    let sensitive = sensitive_at_other_host(&env);
    eprintln!(
        "redirects on reads: 5 codes × {} reads followed to the same origin; {refused} cross-origin refused; \
         sensitive requests at the other host: {}; canary leaks: {}",
        READS.len(),
        sensitive.len(),
        leaks.len()
    );
    assert!(sensitive.is_empty(), "{}", sensitive.join("\n"));
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}
