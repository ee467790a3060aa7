//! The command line: every command, flag and its help, in one place (clap derive). The man
//! page and shell completions are generated from these same definitions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "connctl",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CONNCTL_GIT_COMMIT"), ")"),
    about = "Keep Immuta connections (Snowflake, Databricks Unity Catalog) in git",
    long_about = "Keep Immuta connections (Snowflake, Databricks Unity Catalog) in git.\n\n\
        YAML files describe the connections you want; `connctl plan` compares them with what Immuta has \
        and `connctl apply` walks each connection through script → execute → register, recording every \
        step in a state (a local file, or an object in S3, GCS or Azure shared by CI runs) so an \
        interrupted run resumes where it stopped.",
    after_help = "Start with `connctl init`, then `connctl plan connections.yaml`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct Global {
    /// More log output (-v info, -vv debug, -vvv trace). Logs go to standard error.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to use colour (NO_COLOR is respected).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Log line format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Settings file.
    #[arg(long, global = true, value_name = "PATH", default_value = "connctl.toml")]
    pub config: PathBuf,
    /// The environment of connctl.toml (`[environments.NAME]`) to use; else `CONNCTL_ENV`.
    /// Required by commands that reach Immuta or the state once environments are defined.
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub environment: Option<String>,
    /// Set a YAML variable `${var.NAME}` (repeatable; wins over `CONNCTL_VAR_NAME`, the
    /// environment's `vars` and the `[vars]` default).
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

/// `name=value` of `--var`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a variable name (letters, digits and _)"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// `plan --refresh`: how much of Immuta a plan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Refresh {
    // Plain comments, not doc comments: clap would turn them into per-value help and switch
    // every `--help` of plan and apply to the long layout.
    // Every managed connection of the plan.
    True,
    // Nothing: plan from the state alone.
    False,
    // Only connections whose YAML changed since the last apply, added, removed or interrupted
    // ones (the others' drift is `connctl drift`'s job).
    Changed,
}

impl Refresh {
    /// What a refresh reads; `None` with `--refresh=false`.
    pub fn scope(self) -> Option<connctl_engine::refresh::Scope> {
        use connctl_engine::refresh::Scope;
        match self {
            Refresh::True => Some(Scope::All),
            Refresh::False => None,
            Refresh::Changed => Some(Scope::Changed),
        }
    }

    /// The refresh a saved plan was made with, so apply re-reads the same connections.
    pub fn of(plan: &connctl_engine::plan::Plan) -> Refresh {
        match (plan.refreshed, plan.not_read) {
            (false, _) => Refresh::False,
            (true, Some(_)) => Refresh::Changed,
            (true, None) => Refresh::True,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter connections.yaml and connctl.toml
    #[command(after_help = "Examples:\n  connctl init infra/immuta\n  connctl init --environments dev,prod")]
    Init {
        /// Folder to write into (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Also write `[environments.NAME]` sections, each with its own tenant and state
        /// (e.g. dev,prod; `prod` is protected).
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        environments: Vec<String>,
    },
    /// Check connection files without contacting anything
    #[command(
        after_help = "Examples:\n  connctl validate connections/\n  connctl validate --resolve-secrets prod.yaml"
    )]
    Validate {
        /// YAML files or folders (all *.yaml / *.yml below them; default: the environment's
        /// `paths` in connctl.toml).
        paths: Vec<PathBuf>,
        /// Also check that every secret reference resolves (never prints a value).
        #[arg(long)]
        resolve_secrets: bool,
    },
    /// Show what apply would change
    #[command(
        after_help = "Examples:\n  connctl plan connections/\n  connctl plan connections/ --format markdown > plan.md\n  connctl plan connections/ --out plan.json --detailed-exitcode"
    )]
    Plan {
        #[command(flatten)]
        plan: PlanArgs,
        /// Save the plan; `connctl apply plan.json` then applies exactly it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 2 when there are changes (an import or a health problem counts), 3 when they
        /// include a delete, replace or status cascade.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also run the preflight checks of the connections the plan creates or replaces and
        /// add their checklist to the plan (JSON: `preflight`); exit 1 when one fails.
        #[arg(long)]
        preflight: bool,
    },
    /// Print a saved plan again, exactly as `plan` printed it (never contacts Immuta)
    #[command(
        after_help = "Examples:\n  connctl show plan.json\n  connctl show plan.json --format markdown > plan.md"
    )]
    Show {
        /// A plan saved with `connctl plan --out FILE`.
        plan: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Make Immuta match the YAML
    #[command(
        after_help = "On SIGINT or SIGTERM, apply starts no new step, lets the steps in flight finish, stops `command` executor programs, saves the state, lists what is left and exits 130 (SIGINT) or 143 (SIGTERM); the next apply resumes. A second signal exits at once.\n\nExamples:\n  connctl apply connections/\n  connctl apply --auto-approve --wait connections/\n  connctl apply plan.json    # a saved, reviewed plan: no prompt; refused if stale"
    )]
    Apply {
        #[command(flatten)]
        plan: PlanArgs,
        /// Apply without asking (required when not on a terminal; a saved plan is applied
        /// without asking, since it was reviewed).
        #[arg(long)]
        auto_approve: bool,
        /// Follow each bulk job until Immuta finishes it.
        #[arg(long)]
        wait: bool,
        /// Allow changing a connection's `isActive`, which Immuta applies to every child object.
        #[arg(long)]
        allow_cascade: bool,
        /// Do not run the preflight checks of the connections to create or replace before the
        /// first write (docs/preflight.md).
        #[arg(long)]
        skip_preflight: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Report changes made in Immuta outside connctl (read-only)
    #[command(
        after_help = "Exit status: 0 no drift (unmanaged connections are information only), 2 drift or health problems, 1 error.\n\nExample:\n  connctl drift connections/ --format markdown"
    )]
    Drift {
        /// YAML files or folders (optional: without them, every connection in the state).
        paths: Vec<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Go on although the state is missing or empty while Immuta has connections of the
        /// YAML (otherwise exit 1: the state is probably lost).
        #[arg(long)]
        allow_empty_state: bool,
    },
    /// Each connection's step, last bulkId, its job state and what Immuta shows now
    #[command(
        after_help = "Exit status: 0 shown (when Immuta cannot be read, a warning says so and JOB shows the recorded states), 1 error.\n\nExample:\n  connctl status snowflake-prod"
    )]
    Status {
        /// Connection keys (all when omitted).
        keys: Vec<String>,
        #[command(flatten)]
        common: CommonArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Adopt connections that already exist in Immuta
    #[command(
        after_help = "Examples:\n  connctl import connections/ --key snowflake-prod\n  connctl import connections/ --key 'snowflake-*'\n  connctl import connections/ --all    # e.g. after a lost state"
    )]
    Import {
        /// YAML files or folders declaring the connections.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Keys to adopt (repeatable; globs such as `snowflake-*` adopt every match that
        /// exists in Immuta).
        #[arg(long = "key", required_unless_present = "all")]
        keys: Vec<String>,
        /// Adopt every connection of the YAML that exists in Immuta and is not managed yet.
        #[arg(long, conflicts_with = "keys")]
        all: bool,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Write YAML for connections that exist in Immuta (secrets as placeholders)
    #[command(
        after_help = "Example:\n  connctl export --out adopted.yaml snowflake-prod\n  connctl import adopted.yaml --key snowflake-prod"
    )]
    Export {
        /// Connection keys (every connection in Immuta when omitted).
        keys: Vec<String>,
        /// Write to this file instead of standard output (never overwrites).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
        /// Write secrets as `{ secret: … }` references from this template instead of one
        /// environment variable each: `{key}` is the connection's key, `{field}` the auth field
        /// (e.g. 'vault:kv/immuta/{key}#{field}').
        #[arg(long, value_name = "TEMPLATE")]
        secret_ref: Option<String>,
        /// Also write each connection's data objects whose status or settings differ from their
        /// parent's (what was changed in Immuta's UI), as `objects:` entries.
        #[arg(long)]
        objects: bool,
    },
    /// Ask Immuta to look for new objects below a connection or one of its objects, and wait
    #[command(
        after_help = "PATH is below the connection, as in the YAML's `objects:` (database, database/schema or database/schema/table); a name containing `/` is written in double quotes: 'SALES/\"odd/name\"'.\n\nExit status: 0 the crawl's job completed (or was started, with --no-wait), 1 the job failed or timed out, the path does not exist in Immuta, or an error.\n\nExamples:\n  connctl crawl snowflake-prod\n  connctl crawl snowflake-prod SALES/PUBLIC\n  connctl crawl snowflake-prod SALES --no-wait"
    )]
    Crawl {
        /// The connection's key.
        key: String,
        /// The object below the connection to crawl from (default: the whole connection).
        path: Option<String>,
        /// Print the crawl's bulkId and return without following its job.
        #[arg(long)]
        no_wait: bool,
        /// Immuta URL (overrides connctl.toml). A crawl reads and writes no state.
        #[arg(long, env = "IMMUTA_URL", value_name = "URL")]
        immuta_url: Option<String>,
    },
    /// Inspect, edit, move or unlock the state (never touches Immuta)
    #[command(subcommand, after_help = "Example:\n  connctl state list")]
    State(StateCommand),
    /// Print the YAML as an environment gets it (secrets stay references)
    #[command(
        after_help = "Examples:\n  connctl render --env prod\n  connctl render --env dev connections/ > dev.yaml"
    )]
    Render {
        /// YAML files or folders (default: the environment's `paths` in connctl.toml).
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the connection YAML
    #[command(
        after_help = "Example:\n  connctl schema > connctl.schema.json\n  # then, first line of a YAML file: # yaml-language-server: $schema=./connctl.schema.json"
    )]
    Schema,
    /// Print shell completions
    #[command(after_help = "Example:\n  connctl completions bash > /etc/bash_completion.d/connctl")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages
    #[command(hide = true)]
    Man {
        #[arg(long, default_value = "target/man")]
        out: PathBuf,
    },
    /// Check, read-only, that connections can be registered (Immuta, privileges, names)
    #[command(
        after_help = "Runs read-only GETs and SHOW/SELECT statements with the executors' credentials; creates nothing. docs/preflight.md lists every check.\n\nExit status: 0 nothing failed (\"not checked\" is not a failure), 1 a check failed or an error.\n\nExamples:\n  connctl preflight connections/\n  connctl preflight connections/ --target 'snowflake-*' --format markdown"
    )]
    Preflight {
        /// YAML files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
        /// Only these keys (repeatable; globs such as `snowflake-*`); one matching no connection is an error.
        #[arg(long = "target", value_name = "KEY")]
        targets: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List connections in the state
    #[command(after_help = "Example:\n  connctl state list --state .connctl/state.json")]
    List {
        #[command(flatten)]
        common: StateArgs,
    },
    /// Show one connection's state as JSON
    #[command(after_help = "Example:\n  connctl state show snowflake-prod")]
    Show {
        key: String,
        #[command(flatten)]
        common: StateArgs,
    },
    /// Forget a connection (Immuta is not touched)
    #[command(
        after_help = "Example:\n  connctl state rm snowflake-prod\n  connctl import connections/ --key snowflake-prod    # adopts it again"
    )]
    Rm {
        key: String,
        #[command(flatten)]
        common: StateArgs,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Lift `protect` recorded for a connection, so it can be deleted
    #[command(
        after_help = "Example:\n  connctl state unprotect snowflake-prod && connctl apply --prune connections/"
    )]
    Unprotect {
        key: String,
        #[command(flatten)]
        common: StateArgs,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Print the state as JSON
    #[command(
        after_help = "Example:\n  connctl state pull --state s3://acme-connctl/prod/state.json > backup.json"
    )]
    Pull {
        #[command(flatten)]
        common: StateArgs,
    },
    /// Replace the state with FILE (same lineage and a newer serial, or an empty destination)
    #[command(
        after_help = "Examples:\n  connctl state push .connctl/state.json --state s3://acme-connctl/prod/state.json   # move a local state to S3\n  connctl state push backup.json"
    )]
    Push {
        /// A state file (as written by connctl or `state pull`).
        file: PathBuf,
        #[command(flatten)]
        common: StateArgs,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Release the lock of a remote state left by a killed run (Terraform's force-unlock)
    #[command(
        after_help = "Example:\n  connctl state unlock 2b4c6e1a-3f0d-4a5e-9c7b-8d1e2f3a4b5c --state s3://acme-connctl/prod/state.json"
    )]
    Unlock {
        /// The lock ID, as named by the error of the run that was refused.
        id: String,
        #[command(flatten)]
        common: StateArgs,
    },
}

/// How long a writing command waits for the state lock.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Wait this long for another run's lock (e.g. 30s, 5m; default: fail at once).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub lock_timeout: Duration,
}

/// `90`, `90s`, `5m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 5m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("`{text}` is not a duration such as 30s, 5m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

/// The state flag alone, for commands that never talk to Immuta.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// State file or URL: a path, file://, s3://, gs://, az:// (default: .connctl/state.json).
    #[arg(long, env = "CONNCTL_STATE", value_name = "PATH|URL")]
    pub state: Option<String>,
}

/// Flags shared by commands that talk to Immuta or read the state.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Immuta URL (overrides connctl.toml).
    #[arg(long, env = "IMMUTA_URL", value_name = "URL")]
    pub immuta_url: Option<String>,
    /// State file or URL: a path, file://, s3://, gs://, az:// (default: .connctl/state.json).
    #[arg(long, env = "CONNCTL_STATE", value_name = "PATH|URL")]
    pub state: Option<String>,
    /// Requests in flight at once (default 8).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// YAML files or folders, or (for apply) one saved plan JSON (default: the environment's
    /// `paths` in connctl.toml).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only these keys (repeatable; globs such as `snowflake-*`); one matching no connection is an error.
    #[arg(long = "target", value_name = "KEY")]
    pub targets: Vec<String>,
    /// Delete connections that left the YAML (protected ones are still refused).
    #[arg(long)]
    pub prune: bool,
    /// Refuse to delete or replace more than N connections (default 1).
    #[arg(long, value_name = "N")]
    pub max_deletes: Option<usize>,
    /// Read Immuta before planning: `true` every managed connection, `false` none (plan from
    /// the state alone), `changed` only those whose YAML changed since the last apply, plus
    /// added, removed and interrupted ones (drift of the others is `connctl drift`'s job).
    #[arg(long, value_enum, default_value_t = Refresh::True, value_name = "WHEN")]
    pub refresh: Refresh,
    /// Output format (apply: `json` writes only the apply report to stdout, docs/plan-json.md,
    /// and the plan and progress to stderr).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Go on although the state is missing or empty while Immuta already has connections of
    /// the YAML (otherwise exit 1: the state is probably lost or points at the wrong place).
    #[arg(long)]
    pub allow_empty_state: bool,
    /// Plan without resolving connection secrets (e.g. a pull request from a fork): fields that
    /// depend on one show as `(sensitive, unknown)`, and apply refuses such a saved plan.
    #[arg(long)]
    pub no_secrets: bool,
}
