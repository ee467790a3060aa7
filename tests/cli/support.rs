//! The test environment: a temp folder with a `connctl.toml` pointing at a fresh in-process
//! emulator, the secrets the fixtures reference, and helpers to run the binary and normalise
//! its output for snapshots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use connctl_emulator::{EmulatorConfig, RunningEmulator};
use serde_json::Value;

pub const API_KEY: &str = "emulator-api-key";

/// Repo root (tests run with the crate folder as cwd).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub emulator: RunningEmulator,
    extra_env: Vec<(String, String)>,
    /// [`FILTERS`], bound for every snapshot the test takes while this environment lives.
    _filters: insta::internals::SettingsBindDropGuard,
}

/// What differs between runs, as insta filters (regex, placeholder), applied to every snapshot.
/// The binary's path, the temp folder, the emulator's URL and the repo path are replaced earlier, by
/// [`TestEnv::normalize`], since they are known exactly.
pub const FILTERS: &[(&str, &str)] = &[
    // bulkIds, lock ids, lineages
    (
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[UUID]",
    ),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
    // The state's serial after a run: writes of connections applied in parallel may share one
    // state write, so how many there were depends on timing.
    (r"(serial \d+ then), \d+ now", "$1, [SERIAL] now"),
    (r"sha256:[0-9a-f]{64}", "sha256:[HASH]"),
    // Integration ids: registrations run concurrently, so the order of ids varies.
    (r"\bintegration \d+\b", "integration [ID]"),
    (r"/integrations/\d+\b", "/integrations/[ID]"),
    // Progress lines on stderr (`[    0.4s] sf-a: register`): their times, and the order in which
    // connections running in parallel interleave, vary; each block becomes one line.
    (r"(?m)(^\[\s*\d+\.\d+s\] .*(\n|$))+", "[progress]\n"),
    // The user and machine holding a remote lock.
    (r"\bheld by [^\s,]+@[^\s,]+,", "held by [USER]@[HOST],"),
    // a server other than the emulator (a second emulator, a dead port)
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
];

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit status and both streams, for a snapshot.
    pub fn snapshot(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::with_emulator(EmulatorConfig {
            job_step_ms: 20,
            ..EmulatorConfig::default()
        })
    }

    /// An environment whose emulator has these knobs (latency, faults, …).
    pub fn with_emulator(config: EmulatorConfig) -> TestEnv {
        let emulator = RunningEmulator::start(config).expect("emulator");
        let mut filters = insta::Settings::clone_current();
        for (regex, to) in FILTERS {
            filters.add_filter(regex, *to);
        }
        let env = TestEnv {
            dir: tempfile::tempdir().expect("tempdir"),
            emulator,
            extra_env: Vec::new(),
            _filters: filters.bind_to_scope(),
        };
        env.write_settings("");
        env
    }

    pub fn url(&self) -> String {
        self.emulator.url()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// connctl.toml: Immuta and both warehouse APIs on the emulator, plus `extra`.
    pub fn write_settings(&self, extra: &str) {
        let url = self.url();
        let script = repo().join("tests/cli/run_sql.py");
        let text = format!(
            r#"[immuta]
url = "{url}"
api_key = {{ env = "TEST_IMMUTA_KEY" }}

[executor.snowflake]
kind = "snowflake"
url = "{url}"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = {{ type = "programmaticAccessToken", token = {{ env = "TEST_SF_PAT" }} }}

[executor.databricks]
kind = "databricks"
url = "{url}"
auth = {{ type = "token", token = {{ env = "TEST_DBX_PAT" }} }}

[executor.command]
kind = "command"
command = ["python3", "{script}", "{url}"]
{extra}"#,
            script = script.display()
        );
        std::fs::write(self.path("connctl.toml"), text).expect("write settings");
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.into(), value.into()));
    }

    /// Copies a fixture folder or file from `tests/fixtures/` into the temp folder.
    pub fn fixture(&self, rel: &str) -> PathBuf {
        let from = repo().join("tests/fixtures").join(rel);
        let to = self.path(rel);
        copy_all(&from, &to);
        to
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Runs `connctl`: exit code, stdout and stderr as one string for an inline snapshot
    /// (`insta::assert_snapshot!(env.snap(&["plan"]), @"...")`), [`FILTERS`] applied.
    pub fn snap(&self, args: &[&str]) -> String {
        self.run(args).snapshot()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run connctl");
        let norm = |b: &[u8]| self.normalize(&String::from_utf8_lossy(b));
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: norm(&out.stdout),
            stderr: norm(&out.stderr),
        }
    }

    /// The `connctl` command with this environment, for tests that spawn and kill it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_connctl"));
        cmd.args(args).current_dir(self.dir.path()).env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("NO_COLOR", "1");
        cmd.env("TEST_IMMUTA_KEY", API_KEY);
        cmd.env("TEST_SF_PAT", "test-pat")
            .env("TEST_DBX_PAT", "test-dbx-pat");
        cmd.env("CONNCTL_TEST_SF_PASSWORD", "canary-sf-password-7c1");
        cmd.env("CONNCTL_TEST_SF_KEY_PASSWORD", "canary-key-password-7c2");
        cmd.env("CONNCTL_TEST_SF_OAUTH_SECRET", "canary-oauth-secret-7c3");
        cmd.env("CONNCTL_TEST_DBX_TOKEN", "canary-dbx-token-7c4");
        cmd.env("SNOWFLAKE_PROD_PASSWORD", "canary-example-password-7c5");
        cmd.env("DATABRICKS_PROD_TOKEN", "canary-example-token-7c6");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Spawns `connctl` with this environment, stdin closed and both streams captured.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn connctl")
    }

    /// Replaces what is known exactly and differs between runs: the binary's path, the temp
    /// folder, the emulator's URL, the repo path. Ids and times are left to [`FILTERS`].
    pub fn normalize(&self, text: &str) -> String {
        text.replace(env!("CARGO_BIN_EXE_connctl"), "[CONNCTL]")
            .replace(&self.dir.path().display().to_string(), "[TMP]")
            .replace(&self.url(), "[URL]")
            .replace(&repo().display().to_string(), "[REPO]")
    }

    /// Calls the emulator's admin API.
    pub fn admin(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let client = reqwest::blocking::Client::new();
        let url = format!("{}{}", self.url(), path);
        let req = match method {
            "GET" => client.get(&url),
            "DELETE" => client.delete(&url),
            "PATCH" => client.patch(&url).json(&body),
            _ => client.post(&url).json(&body),
        };
        let resp = req.send().expect("admin call");
        assert!(
            resp.status().is_success(),
            "admin {method} {path}: {}",
            resp.status()
        );
        resp.json().unwrap_or(serde_json::Value::Null)
    }

    /// How many times the emulator saw `method path` answered with a 2xx.
    pub fn count_requests(&self, method: &str, path: &str) -> usize {
        let log = self.admin("GET", "/_emulator/requests", serde_json::Value::Null);
        log.as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["method"] == method && r["path"] == path)
                    .filter(|r| r["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(".connctl/state.json")).expect("state file");
        serde_json::from_str(&text).expect("state parses")
    }
}

fn copy_all(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            copy_all(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).expect("mkdir");
        }
        std::fs::copy(from, to).expect("copy");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the reliability suites.

/// `CONNCTL_SOAK=1` selects the full sizes.
pub fn soak() -> bool {
    std::env::var("CONNCTL_SOAK").is_ok_and(|v| v == "1")
}

pub fn size(small: usize, full: usize) -> usize {
    if soak() { full } else { small }
}

/// The emulator's request log.
pub fn request_log(env: &TestEnv) -> Vec<Value> {
    match env.admin("GET", "/_emulator/requests", Value::Null) {
        Value::Array(a) => a,
        other => panic!("request log is not a list: {other}"),
    }
}

pub fn count(log: &[Value], method: Option<&str>, path: Option<&str>, status: impl Fn(u64) -> bool) -> usize {
    log.iter()
        .filter(|r| method.is_none_or(|m| r["method"] == m))
        .filter(|r| path.is_none_or(|p| r["path"] == p))
        .filter(|r| r["status"].as_u64().is_some_and(&status))
        .count()
}

/// Registrations answered 2xx, and registrations refused as duplicates (409).
pub fn registrations(env: &TestEnv) -> (usize, usize) {
    let log = request_log(env);
    (
        count(&log, Some("POST"), Some("/data/connection"), |s| {
            (200..300).contains(&s)
        }),
        count(&log, Some("POST"), Some("/data/connection"), |s| s == 409),
    )
}

/// `n` connections, alternating Snowflake (userPassword, Snowflake SQL API executor) and
/// Databricks (token, Statement Execution API executor), keys `{tag}-0…`.
pub fn many_connections(n: usize, tag: &str) -> String {
    let mut s = String::from("version: 1\nconnections:\n");
    for i in 0..n {
        if i % 2 == 0 {
            s.push_str(&format!(
                "  - key: {tag}-{i}\n    technology: Snowflake\n    host: acme-{tag}{i}.snowflakecomputing.com\n    warehouse: IMMUTA_WH\n    database: IMMUTA_{up}{i}\n    role: IMMUTA_{up}{i}_SYSTEM\n    auth: {{ type: userPassword, username: IMMUTA_{up}{i}_SYSTEM_ACCOUNT, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}\n",
                up = tag.to_uppercase()
            ));
        } else {
            s.push_str(&format!(
                "  - key: {tag}-{i}\n    technology: Databricks\n    workspaceUrl: dbc-{tag}{i}.cloud.databricks.com\n    httpPath: /sql/1.0/warehouses/w{tag}{i}\n    catalog: immuta_{tag}{i}\n    auth: {{ type: token, token: {{ env: CONNCTL_TEST_DBX_TOKEN }} }}\n"
            ));
        }
    }
    s
}

pub fn assert_no_panic(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what} panicked:\n{stderr}"
    );
}

/// Every file below `dir` with its bytes, relative paths sorted.
pub fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.push((path.strip_prefix(dir).expect("prefix").to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------------
// Data objects (#17): the emulator's object tree, through its admin API.

/// An object path (connection key first) as a URL path, encoded as connctl's client encodes it.
fn object_url(path: &[&str]) -> String {
    let names: Vec<String> = path.iter().map(|n| (*n).to_owned()).collect();
    connctl_immuta::object_url_path(&names).expect("an object path a URL can carry")
}

impl TestEnv {
    /// Changes an object as a person in Immuta's UI would, with `{"isActive"?: bool,
    /// "activateNewChildren"?: bool}` (an override; a status cascades to the objects below).
    /// Answers the tree dump of [`TestEnv::object`].
    pub fn set_object(&self, path: &[&str], settings: Value) -> Value {
        let mut url = object_url(path);
        // `…/seed` is the seed endpoint: an object really named `seed` is sent encoded.
        if path.last() == Some(&"seed") {
            url.replace_range(url.len() - 4.., "%73eed");
        }
        self.admin("POST", &format!("/_emulator/objects/{url}"), settings)
    }

    /// Adds warehouse objects below `path`, found by the next crawl: `children` is an array of
    /// paths relative to it, each `"A/B"` or, for names holding `/`, `["odd/name", "T"]`.
    pub fn seed_objects(&self, path: &[&str], children: Value) -> Value {
        let url = format!("/_emulator/objects/{}/seed", object_url(path));
        self.admin("POST", &url, serde_json::json!({ "children": children }))
    }

    /// The object at `path` and every object below it, crawled or not: `{objectPath, state,
    /// activateNewChildren, objects: [{path, state, activeOverride, activateNewChildren,
    /// activateNewChildrenOverride, crawled}]}`.
    pub fn object(&self, path: &[&str]) -> Value {
        let url = format!("/_emulator/objects/{}", object_url(path));
        self.admin("GET", &url, Value::Null)
    }
}
