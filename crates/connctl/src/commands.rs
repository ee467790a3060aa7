//! The commands: each takes parsed arguments, does its work through the library crates, prints
//! its result, and returns the exit code.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::CommandFactory;
use connctl_engine::apply::{self, ApplyOptions, Outcome, Stop};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::lock::WriterLock;
use connctl_engine::plan::{Action, Cause, Plan};
use connctl_engine::refresh::Live;
use connctl_engine::state::{Phase, State, Step, Task};
use connctl_engine::store::StateStore;

use owo_colors::Style;

use crate::Reported;
use crate::cli::{Cli, Command, CommonArgs, Format, PlanArgs, StateArgs, StateCommand};
use crate::context::{self, Context, Planned};
use crate::render::{self, Kind};
use crate::report::ApplyReport;
use crate::runner::Runner;

/// Deletes and replaces one run may make unless `--max-deletes` says otherwise; plan and apply
/// use the same cap so the plan shows the refusal apply would give.
const DEFAULT_MAX_DELETES: usize = 1;

pub async fn run(cli: Cli, color: bool) -> Result<u8> {
    let config = crate::context::ConfigArgs::from_global(&cli.global);
    match cli.command {
        Command::Init { dir, environments } => crate::init::run(&dir, &environments),
        Command::Render { paths } => {
            let ctx = Context::new(&config, color)?;
            render_cmd(&ctx, &paths)
        }
        Command::Schema => {
            print!("{}", connctl_spec::json_schema_text());
            Ok(0)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "connctl", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { out } => man(&out),
        Command::Validate {
            paths,
            resolve_secrets,
        } => {
            let ctx = Context::new(&config, color)?;
            validate(&ctx, &paths, resolve_secrets)
        }
        Command::Plan {
            plan,
            out,
            detailed_exitcode,
        } => {
            let ctx = Context::new(&config, color)?;
            plan_cmd(&ctx, &plan, out.as_deref(), detailed_exitcode).await
        }
        Command::Show { plan, format } => {
            print_plan(&read_plan(&plan)?, format, Kind::Plan, color);
            Ok(0)
        }
        Command::Apply {
            plan,
            auto_approve,
            wait,
            allow_cascade,
            lock,
        } => {
            let ctx = Context::new(&config, color)?;
            apply_cmd(&ctx, &plan, auto_approve, wait, allow_cascade, lock.lock_timeout).await
        }
        Command::Drift {
            paths,
            common,
            format,
            allow_empty_state,
        } => {
            let ctx = Context::new(&config, color)?;
            drift(&ctx, &paths, &common, format, allow_empty_state).await
        }
        Command::Status { keys, common, json } => {
            let ctx = Context::new(&config, color)?;
            status(&ctx, &keys, &common, json).await
        }
        Command::Import {
            paths,
            keys,
            all,
            common,
            lock,
        } => {
            let ctx = Context::new(&config, color)?;
            let which = if all {
                KeySelection::All
            } else {
                KeySelection::Keys(keys)
            };
            import(&ctx, &paths, &which, &common, lock.lock_timeout).await
        }
        Command::Export {
            keys,
            out,
            common,
            secret_ref,
        } => {
            let ctx = Context::new(&config, color)?;
            let yaml = crate::export::export(&ctx.client(&common)?, &keys, secret_ref.as_deref()).await?;
            match out {
                Some(path) => {
                    // 0600 like the state: it lists every connection and its settings.
                    let mut file = connctl_engine::state::private_new_file(&path).with_context(|| {
                        format!("cannot create {} (export never overwrites)", path.display())
                    })?;
                    file.write_all(yaml.as_bytes())?;
                    println!("Wrote {}", path.display());
                }
                None => print!("{yaml}"),
            }
            Ok(0)
        }
        Command::State(cmd) => {
            let ctx = Context::new(&config, color)?;
            state_cmd(&ctx, cmd).await
        }
    }
}

fn validate(ctx: &Context, paths: &[PathBuf], resolve_secrets: bool) -> Result<u8> {
    let desired = ctx.load_desired(paths)?;
    if resolve_secrets {
        let report = connctl_spec::check_secrets(&desired);
        if report.has_errors() {
            eprint!("{}", report.render(ctx.color));
            return Err(Reported(1).into());
        }
        if !report.is_empty() {
            eprint!("{}", report.render(ctx.color));
        }
    }
    let n = desired.connections.len();
    let files = desired.files.len();
    println!(
        "ok: {n} connection{} in {files} file{} are valid{}",
        if n == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
        if resolve_secrets {
            ", and every secret reference resolves"
        } else {
            ""
        }
    );
    Ok(0)
}

/// `connctl render`: the YAML as the selected environment gets it.
fn render_cmd(ctx: &Context, paths: &[PathBuf]) -> Result<u8> {
    let paths = ctx.spec_paths(paths)?;
    match connctl_spec::render(&paths, &ctx.load_options()) {
        Ok(text) => {
            if let Some(env) = ctx.environment() {
                println!("# environment: {env}");
            }
            print!("{text}");
            Ok(0)
        }
        Err(report) => {
            eprint!("{}", report.render(ctx.color));
            eprintln!("error: {} problem(s) found", report.errors().count());
            Err(Reported(1).into())
        }
    }
}

/// Prints the plan, naming the Immuta tenant and the environment it is for (markdown: under
/// the title; text: the last line; JSON: `state.tenant`, `state.environment`).
fn print_plan(plan: &Plan, format: Format, kind: Kind, color: bool) {
    let with_env = plan
        .state
        .tenant
        .as_deref()
        .map(|t| match &plan.state.environment {
            Some(env) => format!("{t} (environment {env})"),
            None => t.to_owned(),
        });
    let tenant = with_env.as_deref();
    let text = match format {
        Format::Text => {
            let body = render::text(plan, kind, color);
            // Last, so the first line stays the verdict ("No changes." / the actions).
            match tenant {
                Some(t) => format!("{body}Immuta: {t}\n"),
                None => body,
            }
        }
        Format::Markdown => {
            let body = render::markdown(plan, kind);
            match (tenant, body.split_once('\n')) {
                (Some(t), Some((title, rest))) => format!("{title}\nImmuta: `{t}`\n{rest}"),
                _ => body,
            }
        }
        Format::Json => render::json(plan),
    };
    // Plan errors can quote a server's answer, which can echo a request.
    print!("{}", connctl_spec::redact(&text));
}

async fn plan_cmd(ctx: &Context, args: &PlanArgs, out: Option<&Path>, detailed: bool) -> Result<u8> {
    let (loaded, location) = ctx.read_state(&args.common).await?;
    let desired = ctx.load_desired(&args.paths)?;
    let Planned { plan, .. } =
        context::make_plan(ctx, args, desired, &loaded.state, Some(DEFAULT_MAX_DELETES)).await?;
    context::refuse_lost_state(&plan, &loaded, &location, args.allow_empty_state)?;
    print_plan(&plan, args.format, Kind::Plan, ctx.color);
    if let Some(out) = out {
        save_plan(out, &plan)?;
        if args.format == Format::Text {
            println!(
                "Saved the plan to {}; apply exactly it with `connctl apply {}`.",
                out.display(),
                out.display()
            );
        }
    }
    if !plan.errors.is_empty() {
        return Ok(1);
    }
    Ok(exit_for(&plan, detailed))
}

/// Writes the plan as JSON, mode 0600 (it names every connection and its settings), with
/// every secret removed from the error texts it may quote.
fn save_plan(out: &Path, plan: &Plan) -> Result<()> {
    let text = render::json(plan);
    connctl_engine::state::write_atomic(out, connctl_spec::redact(&text).as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))
}

fn exit_for(plan: &Plan, detailed: bool) -> u8 {
    // An import sends nothing to Immuta, but it is still to do (it changes the state): 2. So is
    // a health problem (an integration failed, an object gone).
    let to_do = plan.changes.iter().any(|c| c.action != Action::Orphan) || !plan.health.is_empty();
    if !detailed || !to_do {
        0
    } else if plan.is_destructive() {
        // Deletes, replaces, and status changes that cascade to child objects.
        3
    } else {
        2
    }
}

/// A saved plan, if `paths` is exactly one JSON file holding one.
fn saved_plan(paths: &[PathBuf]) -> Result<Option<Plan>> {
    let [path] = paths else { return Ok(None) };
    if path.extension().is_none_or(|e| e != "json") {
        return Ok(None);
    }
    read_plan(path).map(Some)
}

/// Reads a plan saved with `plan --out`, refusing another format version.
fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let plan: Plan =
        serde_json::from_str(&text).with_context(|| format!("{} is not a connctl plan", path.display()))?;
    if plan.format_version != connctl_engine::plan::PLAN_FORMAT_VERSION {
        bail!(
            "{} has plan format {}, this connctl reads {}",
            path.display(),
            plan.format_version,
            connctl_engine::plan::PLAN_FORMAT_VERSION
        );
    }
    Ok(plan)
}

/// Releases a writer's lock at the end of a command; a failure is a warning (the lock then
/// expires by itself, or `state unlock` frees it).
async fn release(lock: &WriterLock) {
    if let Err(e) = lock.release().await {
        eprintln!("warning: {e}");
        if let Some(id) = lock.id() {
            eprintln!("  = help: if the lock is still held, `connctl state unlock {id}` releases it");
        }
    }
}

async fn apply_cmd(
    ctx: &Context,
    args: &PlanArgs,
    auto_approve: bool,
    wait: bool,
    allow_cascade: bool,
    lock_timeout: Duration,
) -> Result<u8> {
    let location = ctx.state_location(args.common.state.as_deref())?;
    let saved = saved_plan(&args.paths)?;
    // Everything that can be checked is checked before the lock file is written.
    let spec_paths: Vec<PathBuf> = match &saved {
        Some(saved) => saved.spec_files.iter().map(PathBuf::from).collect(),
        None => args.paths.clone(),
    };
    let desired = ctx.load_desired(&spec_paths)?;
    // Every secret of the YAML, not only the targeted connections': redaction and the command
    // executor's environment filter must know them all. A reference that does not resolve is
    // reported where it is needed, not here.
    for conn in &desired.connections {
        // Provider secrets are resolved only for the connections the run touches.
        for (_, reference) in conn.secret_refs().into_iter().filter(|(_, r)| !r.is_provider()) {
            let _ = reference.resolve();
        }
    }
    let client = ctx.client(&args.common)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let lock = Arc::new(WriterLock::acquire(&location, &command, lock_timeout).await?);
    let result = apply_locked(
        ctx,
        args,
        auto_approve,
        wait,
        allow_cascade,
        &location,
        lock.clone(),
        saved,
        desired,
        client,
    )
    .await;
    release(&lock).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn apply_locked(
    ctx: &Context,
    args: &PlanArgs,
    auto_approve: bool,
    wait: bool,
    allow_cascade: bool,
    location: &StateLocation,
    lock: Arc<WriterLock>,
    saved: Option<Plan>,
    desired: connctl_spec::Desired,
    client: connctl_immuta::ImmutaClient,
) -> Result<u8> {
    let Loaded {
        mut state,
        found,
        version,
    } = location.load_for_writer(&lock).await?;
    ctx.claim_state(&mut state, &args.common, location)?;
    if let Some(saved) = &saved
        && state.serial == 0
        && saved.state.serial == 0
    {
        // Planned before any state existed: adopt its identity so its fingerprints compare.
        state.lineage = saved.state.lineage.clone();
        state.salt = saved.state.salt.clone();
    }
    let planned = match &saved {
        Some(saved) => {
            if saved.state.secrets_unknown {
                bail!(
                    "this plan was made without connection secrets (--no-secrets, or a secret that did not resolve), so it cannot be applied\n  = help: plan again where the secrets resolve: `connctl plan --out plan.json`"
                );
            }
            if saved.state.environment.as_deref() != ctx.environment() {
                bail!(
                    "the saved plan was made for environment {}, but this run is for {}",
                    saved
                        .state
                        .environment
                        .as_deref()
                        .map_or("(none)".into(), |e| format!("`{e}`")),
                    ctx.environment().map_or("(none)".into(), |e| format!("`{e}`"))
                );
            }
            if let (Some(made_for), Some(url)) = (&saved.state.tenant, ctx.immuta_url(&args.common))
                && *made_for != connctl_engine::state::normalise_tenant(&url)
            {
                bail!(
                    "the saved plan was made for the Immuta tenant {made_for}, but this run uses {}",
                    connctl_engine::state::normalise_tenant(&url)
                );
            }
            if saved.state.lineage != state.lineage && state.serial > 0 {
                bail!(
                    "stale plan: it was made for another state (lineage {})",
                    saved.state.lineage
                );
            }
            if saved.state.serial != state.serial {
                bail!(
                    "stale plan: the state changed since the plan was made (serial {} then, {} now)\n  = help: run `connctl plan --out` again",
                    saved.state.serial,
                    state.serial
                );
            }
            let mut again = args.clone();
            again.refresh = saved.refreshed;
            let planned = context::make_plan(ctx, &again, desired, &state, None).await?;
            let moved: Vec<&str> = saved
                .live_fingerprints
                .iter()
                .filter(|(k, v)| planned.plan.live_fingerprints.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .collect();
            if !moved.is_empty() {
                bail!(
                    "stale plan: Immuta changed since the plan was made ({})\n  = help: run `connctl plan --out` again",
                    moved.join(", ")
                );
            }
            let changed: Vec<&str> = saved
                .desired_fingerprints
                .iter()
                .filter(|(k, v)| planned.plan.desired_fingerprints.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .collect();
            if !changed.is_empty() {
                bail!(
                    "stale plan: the YAML or a secret changed since the plan was made ({})\n  = help: run `connctl plan --out` again",
                    changed.join(", ")
                );
            }
            // Apply exactly what was reviewed.
            Planned {
                plan: saved.clone(),
                ..planned
            }
        }
        None => context::make_plan(ctx, args, desired, &state, Some(DEFAULT_MAX_DELETES)).await?,
    };
    let loaded = Loaded {
        state,
        found,
        version,
    };
    context::refuse_lost_state(&planned.plan, &loaded, location, args.allow_empty_state)?;
    let plan = &planned.plan;
    // With `--format json`, standard output carries only the apply report; people read stderr.
    let json = args.format == Format::Json;
    if json {
        eprint!(
            "{}",
            connctl_spec::redact(&render::text(plan, Kind::Plan, ctx.color))
        );
    } else {
        print_plan(plan, args.format, Kind::Plan, ctx.color);
    }
    let refuse = |errors: Vec<String>| {
        if json {
            print!("{}", ApplyReport::refused(errors).to_json());
        }
    };
    if !plan.errors.is_empty() {
        refuse(plan.errors.clone());
        return Ok(1);
    }
    if plan.state.secrets_unknown {
        let error = "refusing to apply a plan whose connection secrets are unknown (--no-secrets, or a secret that did not resolve); nothing was sent";
        refuse(vec![error.into()]);
        bail!(error);
    }
    if plan.is_empty() {
        if json {
            print!("{}", ApplyReport::no_changes().to_json());
        }
        return Ok(0);
    }
    let cascading: Vec<&str> = plan.cascades().map(|c| c.key.as_str()).collect();
    if !allow_cascade && !cascading.is_empty() {
        let error = format!(
            "refusing to change the status of {} ({}): Immuta applies it to every child object\n  = help: review the plan above, then pass --allow-cascade if that is intended; nothing was sent",
            if cascading.len() == 1 {
                "a connection"
            } else {
                "connections"
            },
            cascading.join(", ")
        );
        refuse(vec![error.clone()]);
        bail!(error);
    }
    let typed = ctx.confirm_protected(auto_approve)?;
    // A saved plan was reviewed when it was made (and is refused above if stale), as Terraform does.
    if !auto_approve && saved.is_none() && !typed {
        if !std::io::stdin().is_terminal() {
            let error = "refusing to apply without confirmation in a non-interactive run\n  = help: review the plan above, then pass --auto-approve (or apply a saved plan: `connctl plan --out plan.json`, then `connctl apply plan.json`)";
            refuse(vec![error.into()]);
            bail!(error);
        }
        let mut human = human_out(json);
        write!(human, "\nApply these changes? Only 'yes' is accepted: ")?;
        human.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            writeln!(human, "Apply cancelled; nothing was changed.")?;
            refuse(vec!["apply cancelled at the prompt; nothing was changed".into()]);
            return Ok(1);
        }
    }
    let scripts_dir = location.scripts_dir();
    let stop = Stop::default();
    let signal = crate::signals::watch(stop.clone())?;
    let runner = Arc::new(Runner::new(
        &ctx.settings.executor,
        scripts_dir.clone(),
        stop.clone(),
    ));
    let before = loaded.state.clone();
    let store = StateStore::open(loaded, location.clone(), lock);
    let options = ApplyOptions {
        parallelism: ctx.settings.parallelism(&args.common),
        wait,
        scripts_dir,
        stop,
        ..ApplyOptions::default()
    };
    // Apply leaves imports and orphans alone (import is its own command).
    let total = plan
        .changes
        .iter()
        .filter(|c| !matches!(c.action, Action::Import | Action::Orphan))
        .count();
    let progress = crate::progress::Progress::new(total, ctx.color);
    let sink = progress.sink();
    let outcomes = apply::apply(
        plan,
        planned.targets,
        client,
        runner,
        store.clone(),
        options,
        sink,
    )
    .await;
    progress.finish();
    let (writes, bytes) = store.write_stats();
    tracing::info!("state: {writes} write(s), {bytes} byte(s) to {location}");
    let mut human = human_out(json);
    let code = report_outcomes(&mut human, &outcomes, ctx.color)?;
    // Every step wrote the state as it went, and the lock is released when this returns.
    let received = signal.received();
    if let Some(signal) = received {
        let unfinished: Vec<&str> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Interrupted { .. }))
            .map(|(k, _)| k.as_str())
            .collect();
        writeln!(
            human,
            "Stopped by {}: {} connection(s) left unfinished{}{}; the state is saved and the next `connctl apply` resumes them.",
            signal.name(),
            unfinished.len(),
            if unfinished.is_empty() { "" } else { ": " },
            unfinished.join(", ")
        )?;
    }
    let code = received.map_or(code, |s| s.exit_code());
    if json {
        let after = store.snapshot();
        let report = ApplyReport::of_run(plan, &outcomes, &before, &after, received.map(|s| s.name()), code);
        print!("{}", report.to_json());
    }
    Ok(code)
}

/// Where apply's human text goes: standard output, or standard error when standard output
/// carries the JSON report.
fn human_out(json: bool) -> Box<dyn Write> {
    if json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    }
}

fn report_outcomes(out: &mut dyn Write, outcomes: &BTreeMap<String, Outcome>, color: bool) -> Result<u8> {
    // An outcome's text can quote a server's or an executor's answer, which can echo a secret.
    let redact = |text: &str| connctl_spec::redact(text).into_owned();
    writeln!(out)?;
    let (mut ok, mut waiting, mut failed, mut skipped, mut interrupted) = (0, 0, 0, 0, 0);
    for (key, outcome) in outcomes {
        match outcome {
            Outcome::Applied { detail } => {
                ok += 1;
                writeln!(
                    out,
                    "  {} {key}: {}",
                    render::paint("✓", Style::new().green(), color),
                    redact(detail)
                )?;
            }
            Outcome::AwaitingExecution { path } => {
                waiting += 1;
                writeln!(
                    out,
                    "  {} {key}: run the script saved at {} as a privileged user, then run `connctl apply` again",
                    render::paint("…", Style::new().yellow(), color),
                    path.display()
                )?;
            }
            Outcome::Skipped { reason } => {
                skipped += 1;
                writeln!(
                    out,
                    "  {} {key}: skipped: {}",
                    render::paint("-", Style::new().cyan(), color),
                    redact(reason)
                )?;
            }
            Outcome::Failed { error } => {
                failed += 1;
                writeln!(
                    out,
                    "  {} {key}: {}",
                    render::paint("✗", Style::new().red(), color),
                    redact(error)
                )?;
            }
            Outcome::Interrupted { detail } => {
                interrupted += 1;
                writeln!(
                    out,
                    "  {} {key}: interrupted: {detail}",
                    render::paint("‖", Style::new().yellow(), color)
                )?;
            }
        }
    }
    let stopped = if interrupted > 0 {
        format!(", {interrupted} interrupted")
    } else {
        String::new()
    };
    writeln!(
        out,
        "\nApply: {ok} applied, {waiting} awaiting execution, {skipped} skipped, {failed} failed{stopped}."
    )?;
    Ok(if failed > 0 { 1 } else { 0 })
}

async fn drift(
    ctx: &Context,
    paths: &[PathBuf],
    common: &CommonArgs,
    format: Format,
    allow_empty_state: bool,
) -> Result<u8> {
    let (loaded, location) = ctx.read_state(common).await?;
    let state = &loaded.state;
    // Drift compares Immuta with what was last applied; the YAML only narrows the keys.
    let only: Option<Vec<String>> = if paths.is_empty() {
        None
    } else {
        Some(
            ctx.load_desired(paths)?
                .connections
                .into_iter()
                .map(|c| c.key)
                .collect(),
        )
    };
    if state.connections.is_empty() && !allow_empty_state {
        // "No drift" from an empty state would check nothing: a lost state must not pass.
        let Some(keys) = &only else {
            bail!(
                "the state {location} is {}: drift has nothing to compare\n  = help: name the YAML (`connctl drift connections/`) so drift can tell a first run from a lost state, or pass --allow-empty-state",
                if loaded.found { "empty" } else { "missing" }
            );
        };
        let client = ctx.client(common)?;
        let live = connctl_engine::refresh::refresh(
            &client,
            state,
            &Default::default(),
            ctx.settings.parallelism(common),
        )
        .await?;
        let found: Vec<&str> = keys
            .iter()
            .filter(|k| live.keys.contains(*k))
            .map(String::as_str)
            .collect();
        context::lost_state(&found, &loaded, &location)?;
    }
    let applied: BTreeMap<String, connctl_engine::plan::DesiredView<'_>> = state
        .connections
        .iter()
        .filter(|(k, _)| only.as_ref().is_none_or(|o| o.contains(k)))
        .filter_map(|(k, s)| {
            let fields = s.applied.clone()?;
            Some((
                k.clone(),
                connctl_engine::plan::DesiredView {
                    technology: &s.technology,
                    fields,
                    protect: s.protect,
                },
            ))
        })
        .collect();
    let client = ctx.client(common)?;
    let wanted = applied.keys().cloned().collect();
    let live =
        connctl_engine::refresh::refresh(&client, state, &wanted, ctx.settings.parallelism(common)).await?;
    let options = connctl_engine::plan::PlanOptions::default();
    let mut plan = connctl_engine::plan::plan(&applied, state, Some(&live), &options, vec![])?;
    plan.state.tenant = Some(connctl_engine::state::normalise_tenant(client.base_url()));
    plan.state.environment = ctx.environment().map(str::to_owned);
    // Keep only what Immuta changed: drifted fields and objects deleted outside connctl.
    let mut undrifted = Vec::new();
    plan.changes.retain_mut(|c| {
        c.fields.retain(|f| f.cause != Cause::Config);
        let drifted = c.action == Action::Recreate || (c.action == Action::Update && !c.fields.is_empty());
        if !drifted {
            undrifted.push(c.key.clone());
        }
        drifted
    });
    plan.unchanged.extend(undrifted);
    plan.unchanged.sort();
    connctl_engine::refresh::count_cascades(&client, &mut plan).await?;
    // Unmanaged connections (in Immuta, in no state) are shown as information only.
    // The counts describe drift only, not what a plan would do.
    plan.summary = connctl_engine::plan::Summary {
        drifted: plan.changes.len(),
        unchanged: plan.unchanged.len(),
        unmanaged: plan.unmanaged.len(),
        unhealthy: plan.summary.unhealthy,
        ..Default::default()
    };
    print_plan(&plan, format, Kind::Drift, ctx.color);
    Ok(if plan.changes.is_empty() && plan.health.is_empty() {
        0
    } else {
        2
    })
}

async fn status(ctx: &Context, keys: &[String], common: &CommonArgs, json: bool) -> Result<u8> {
    let (loaded, path) = ctx.read_state(common).await?;
    let state = loaded.state;
    // Immuta unreachable or refusing the key: the recorded state is still worth showing, with
    // a warning that the job states are the recorded ones (exit 0, docs/plan-json.md).
    let mut unread: Option<String> = None;
    let mut client = ctx
        .client(common)
        .map_err(|e| unread = Some(format!("{e:#}")))
        .ok();
    // What Immuta has now, so a connection deleted or broken there is not shown as fine.
    let live = match &client {
        Some(c) => {
            let wanted = state
                .connections
                .keys()
                .filter(|k| keys.is_empty() || keys.contains(k))
                .cloned()
                .collect();
            match connctl_engine::refresh::refresh(c, &state, &wanted, ctx.settings.parallelism(common)).await
            {
                Ok(live) => Some(live),
                Err(e) => {
                    unread = Some(format!("{e:#}"));
                    client = None;
                    None
                }
            }
        }
        None => None,
    };
    let mut rows = Vec::new();
    for (key, s) in &state.connections {
        if !keys.is_empty() && !keys.contains(key) {
            continue;
        }
        let immuta = immuta_health(key, s, live.as_ref());
        let bulk = s.last_bulk();
        let recorded =
            |b: &connctl_engine::state::BulkRecord| b.job_state.clone().unwrap_or_else(|| "unknown".into());
        let job = match (bulk, &client) {
            // Gone from Immuta: its last job says nothing about it any more.
            _ if immuta == "missing" => "-".into(),
            (Some(b), Some(c)) => match c.jobs(&b.bulk_id).await {
                Ok(jobs) if !jobs.is_empty() => {
                    jobs.iter().map(|j| j.state.clone()).collect::<Vec<_>>().join(",")
                }
                Ok(_) => "unknown".into(),
                Err(e) if e.is_not_found() => "unknown".into(),
                Err(e) => {
                    unread = Some(e.to_string());
                    client = None;
                    recorded(b)
                }
            },
            (Some(b), None) => recorded(b),
            (None, _) => "-".into(),
        };
        rows.push(serde_json::json!({
            "key": key,
            "technology": s.technology,
            "step": s.step.as_str(),
            "protect": s.protect,
            "bulkId": bulk.map(|b| b.bulk_id.clone()),
            "bulkOrigin": bulk.map(|b| b.origin.clone()),
            "jobState": job,
            "immuta": immuta,
            "pending": s.pending.as_ref().map(|p| p.operation.as_str()),
            "cleanupScript": s.pending.as_ref().and_then(|p| p.cleanup_script.as_ref()),
        }));
    }
    for k in keys {
        if !state.connections.contains_key(k) {
            bail!("`{k}` is not in the state ({path})");
        }
    }
    // Connections in Immuta that connctl does not manage: information, never an error.
    let unmanaged: Vec<&String> = match (&live, keys.is_empty()) {
        (Some(live), true) => live
            .keys
            .iter()
            .filter(|k| !state.connections.contains_key(*k))
            .collect(),
        _ => Vec::new(),
    };
    for key in &unmanaged {
        rows.push(serde_json::json!({
            "key": key,
            "technology": null,
            "step": "-",
            "protect": false,
            "bulkId": null,
            "bulkOrigin": null,
            "jobState": "-",
            "immuta": "unmanaged",
            "pending": null,
            "cleanupScript": null,
        }));
    }
    if let Some(reason) = &unread {
        eprintln!(
            "warning: live job states could not be read from Immuta: {reason}\n  = help: JOB shows the states recorded in {}",
            path
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("The state ({path}) holds no connections.");
        return Ok(0);
    }
    println!(
        "{:<28} {:<11} {:<19} {:<38} {:<10} IMMUTA",
        "KEY", "TECHNOLOGY", "STEP", "LAST BULK ID", "JOB"
    );
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
        // The state still says registered; Immuta says otherwise, and Immuta wins.
        let step = if s("immuta") == "missing" {
            "deleted in Immuta".into()
        } else {
            s("step")
        };
        println!(
            "{:<28} {:<11} {:<19} {:<38} {:<10} {}",
            s("key"),
            s("technology"),
            step,
            s("bulkId"),
            s("jobState"),
            s("immuta")
        );
    }
    // Operations that stopped part-way, above all a delete whose cleanup has not run yet.
    for (key, s) in &state.connections {
        let Some(p) = s
            .pending
            .as_ref()
            .filter(|_| keys.is_empty() || keys.contains(key))
        else {
            continue;
        };
        match &p.cleanup_script {
            Some(path) => println!(
                "{key}: an interrupted delete; its cleanup script is saved at {} and the next apply finishes it",
                path.display()
            ),
            None => println!(
                "{key}: an interrupted {}; the next apply resumes it",
                p.operation.as_str()
            ),
        }
    }
    Ok(0)
}

/// What Immuta shows of a connection in the state: `ok`, `missing` (deleted outside connctl),
/// its health problems, `drifted` (a field changed in Immuta; `connctl drift` shows which), `-`
/// (never registered) or `unknown` (Immuta was not read).
fn immuta_health(key: &str, s: &connctl_engine::state::ConnectionState, live: Option<&Live>) -> String {
    let Some(live) = live else { return "unknown".into() };
    if s.applied.is_none() {
        return "-".into();
    }
    if !live.keys.contains(key) {
        // connctl's own interrupted delete is not a deletion behind its back.
        let deleting = s
            .pending
            .as_ref()
            .is_some_and(|p| p.operation == connctl_engine::state::PendingOp::Delete);
        return if deleting {
            "deleting".into()
        } else {
            "missing".into()
        };
    }
    let problems: Vec<&str> = live
        .health
        .iter()
        .filter(|h| h.key == key)
        .map(|h| h.kind.as_str())
        .collect();
    if !problems.is_empty() {
        return problems.join(", ");
    }
    let drifted = match (&s.applied, live.fields.get(key)) {
        (Some(applied), Some(seen)) => seen
            .iter()
            .any(|(path, now)| applied.get(path).is_some_and(|was| was != now)),
        _ => false,
    };
    if drifted { "drifted".into() } else { "ok".into() }
}

/// Which connections `import` adopts.
enum KeySelection {
    /// Every connection of the YAML that exists in Immuta and is not managed yet.
    All,
    /// These keys; a glob selects the matching keys of the YAML like `All` does.
    Keys(Vec<String>),
}

async fn import(
    ctx: &Context,
    paths: &[PathBuf],
    keys: &KeySelection,
    common: &CommonArgs,
    lock_timeout: Duration,
) -> Result<u8> {
    let location = ctx.state_location(common.state.as_deref())?;
    let desired = ctx.load_desired(paths)?;
    let client = ctx.client(common)?;
    let lock = WriterLock::acquire(&location, "connctl import", lock_timeout).await?;
    let result = import_locked(ctx, keys, common, &location, &lock, desired, client).await;
    release(&lock).await;
    result
}

async fn import_locked(
    ctx: &Context,
    which: &KeySelection,
    common: &CommonArgs,
    location: &StateLocation,
    lock: &WriterLock,
    mut desired: connctl_spec::Desired,
    client: connctl_immuta::ImmutaClient,
) -> Result<u8> {
    let Loaded {
        mut state, version, ..
    } = location.load_for_writer(lock).await?;
    ctx.claim_state(&mut state, common, location)?;
    // Keys named exactly must each be adoptable; keys selected by `--all` or a glob are
    // adopted where Immuta has them, and the others left for `apply`.
    let managed = |key: &str| state.connections.get(key).is_some_and(|s| s.applied.is_some());
    let declared: Vec<String> = desired.connections.iter().map(|c| c.key.clone()).collect();
    let mut problems = Vec::new();
    let mut exact = Vec::new();
    let mut selected = std::collections::BTreeSet::new();
    match which {
        KeySelection::All => selected.extend(declared.iter().filter(|k| !managed(k)).cloned()),
        KeySelection::Keys(keys) => {
            for pattern in keys {
                if !pattern.contains(['*', '?', '[', '{']) {
                    exact.push(pattern.clone());
                    continue;
                }
                let glob = globset::Glob::new(pattern)
                    .with_context(|| format!("invalid --key pattern `{pattern}`"))?
                    .compile_matcher();
                let matched: Vec<&String> = declared.iter().filter(|k| glob.is_match(k)).collect();
                if matched.is_empty() {
                    problems.push(format!("`{pattern}` matches no connection of the YAML"));
                }
                selected.extend(matched.into_iter().filter(|k| !managed(k)).cloned());
            }
        }
    }
    for key in &exact {
        selected.remove(key);
    }
    // Only the connections being adopted need their secrets.
    desired
        .connections
        .retain(|c| exact.contains(&c.key) || selected.contains(&c.key));
    let targets = context::targets(desired, &state.salt, false)?;
    let mut to_read = Vec::new();
    for key in &exact {
        if !targets.contains_key(key) {
            problems.push(format!("`{key}` is not declared in the YAML; declare it first"));
        } else if managed(key) {
            problems.push(format!("`{key}` is already managed"));
        } else {
            to_read.push((key.clone(), None));
        }
    }
    to_read.extend(selected.iter().map(|k| (k.clone(), None)));
    let mut left_for_apply = Vec::new();
    let parallelism = ctx.settings.parallelism(common);
    let mut adopted = Vec::new();
    for (key, seen) in connctl_engine::refresh::read_many(&client, to_read, parallelism).await? {
        let Some(t) = targets.get(&key) else { continue };
        let Some(seen) = seen else {
            if selected.contains(&key) {
                left_for_apply.push(key);
            } else {
                problems.push(format!(
                    "`{key}` does not exist in Immuta; `connctl apply` creates it"
                ));
            }
            continue;
        };
        let mismatched: Vec<String> = seen
            .fields
            .iter()
            .filter_map(|(path, value)| {
                let want = t.fields.get(path)?;
                (want != value).then(|| format!("{path}: Immuta has {value}, the YAML says {want}"))
            })
            .collect();
        if !mismatched.is_empty() {
            problems.push(format!(
                "`{key}` differs from the YAML; make them agree before importing:\n    {}",
                mismatched.join("\n    ")
            ));
            continue;
        }
        let entry = state.connections.entry(key.clone()).or_insert_with(|| {
            connctl_engine::state::ConnectionState::new(t.connection.technology().as_str())
        });
        entry.applied = Some(t.fields.clone());
        entry.step = Step::Registered;
        entry.protect = t.connection.protect;
        entry.integration_id = seen.integration_id;
        entry.journal(
            Task::Import,
            Phase::Done,
            Some("adopted; secrets taken as the YAML's (Immuta never shows them)".into()),
        );
        adopted.push(key);
    }
    if !adopted.is_empty() {
        lock.verify()?;
        location.save(&mut state, version).await?;
        println!("Imported {}: {}", adopted.len(), adopted.join(", "));
    }
    if !left_for_apply.is_empty() {
        println!(
            "Not in Immuta, left for `connctl apply` to create: {}",
            left_for_apply.join(", ")
        );
    }
    if adopted.is_empty() && left_for_apply.is_empty() && problems.is_empty() {
        println!("Nothing to import: every selected connection is already managed.");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {}", connctl_spec::redact(p));
        }
        return Err(Reported(1).into());
    }
    Ok(0)
}

async fn state_cmd(ctx: &Context, cmd: StateCommand) -> Result<u8> {
    match cmd {
        StateCommand::List { common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let state = location.load().await?.state;
            for (key, s) in &state.connections {
                println!(
                    "{key}\t{}\t{}{}",
                    s.technology,
                    s.step.as_str(),
                    if s.protect { "\tprotected" } else { "" }
                );
            }
            Ok(0)
        }
        StateCommand::Show { key, common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let state = location.load().await?.state;
            let s = state
                .connections
                .get(&key)
                .ok_or_else(|| anyhow!("`{key}` is not in the state ({location})"))?;
            println!("{}", connctl_spec::redact(&serde_json::to_string_pretty(s)?));
            Ok(0)
        }
        StateCommand::Rm { key, common, lock } => {
            edit_state(ctx, &common, lock.lock_timeout, &key, "connctl state rm", |state, key| {
                state.connections.remove(key);
                format!(
                    "Forgot `{key}`. Immuta was not touched; `connctl import PATHS --key {key}` adopts it again."
                )
            })
            .await
        }
        StateCommand::Unprotect { key, common, lock } => {
            edit_state(
                ctx,
                &common,
                lock.lock_timeout,
                &key,
                "connctl state unprotect",
                |state, key| {
                    if let Some(s) = state.connections.get_mut(key) {
                        s.protect = false;
                        s.journal(Task::Unprotect, Phase::Done, None);
                    }
                    format!(
                        "`{key}` is no longer protected; it can be deleted with `apply --prune` once it leaves the YAML."
                    )
                },
            )
            .await
        }
        StateCommand::Pull { common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let loaded = location.load().await?;
            if !loaded.found {
                bail!("there is no state at {location}");
            }
            print!("{}", serde_json::to_string_pretty(&loaded.state)? + "\n");
            Ok(0)
        }
        StateCommand::Push { file, common, lock } => push(ctx, &file, &common, lock.lock_timeout).await,
        StateCommand::Unlock { id, common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let StateLocation::Remote(object) = &location else {
                return Err(connctl_engine::lock::LockError::LocalUnlock {
                    path: location.display_path(),
                }
                .into());
            };
            let holder = connctl_engine::remote_lock::force_unlock(object, &id).await?;
            println!(
                "Released lock {} of {location} (held by {}, `{}`, since {}).",
                holder.id, holder.who, holder.operation, holder.created
            );
            Ok(0)
        }
    }
}

/// `state push FILE`: replaces the state with FILE. The destination must be empty, or hold
/// the same lineage at an older serial (so a stale copy cannot overwrite newer work).
async fn push(ctx: &Context, file: &Path, common: &StateArgs, lock_timeout: Duration) -> Result<u8> {
    let location = ctx.state_location(common.state.as_deref())?;
    let source = connctl_engine::state::resolve_path(file)?;
    if !source.exists() {
        bail!("cannot read {}: no such file", file.display());
    }
    let mut pushed = State::load(&source)?;
    let lock = WriterLock::acquire(&location, "connctl state push", lock_timeout).await?;
    let result = async {
        let current = location.load_for_writer(&lock).await?;
        if current.found {
            let now = &current.state;
            if now.lineage != pushed.lineage {
                bail!(
                    "{} has lineage {}, the state at {location} has {}: they are different states\n  = help: push to an empty location, or pull this one first (`connctl state pull`)",
                    file.display(),
                    pushed.lineage,
                    now.lineage
                );
            }
            if pushed.serial <= now.serial {
                bail!(
                    "{} has serial {}, not newer than the state at {location} (serial {}): pushing it would lose changes\n  = help: pull the current state (`connctl state pull`) and work from it",
                    file.display(),
                    pushed.serial,
                    now.serial
                );
            }
            if let (Some(a), Some(b)) = (&now.tenant, &pushed.tenant)
                && a != b
            {
                bail!(
                    "{} was written for the Immuta tenant {b}, the state at {location} for {a}",
                    file.display()
                );
            }
        }
        lock.verify()?;
        // The pushed serial is kept (the save bumps it once more), so saved plans made from
        // FILE are refused as stale rather than applied against a state they did not see.
        let serial = pushed.serial;
        location.save(&mut pushed, current.version).await?;
        println!(
            "Pushed {} (serial {serial}, {} connection(s)) to {location}; it is now at serial {}.",
            file.display(),
            pushed.connections.len(),
            pushed.serial
        );
        Ok(0)
    }
    .await;
    release(&lock).await;
    result
}

async fn edit_state(
    ctx: &Context,
    common: &StateArgs,
    lock_timeout: Duration,
    key: &str,
    command: &str,
    edit: impl FnOnce(&mut State, &str) -> String,
) -> Result<u8> {
    let location = ctx.state_location(common.state.as_deref())?;
    let lock = WriterLock::acquire(&location, command, lock_timeout).await?;
    let result = async {
        let Loaded {
            mut state, version, ..
        } = location.load_for_writer(&lock).await?;
        if !state.connections.contains_key(key) {
            bail!("`{key}` is not in the state ({location})");
        }
        let message = edit(&mut state, key);
        lock.verify()?;
        location.save(&mut state, version).await?;
        println!("{message}");
        Ok(0)
    }
    .await;
    release(&lock).await;
    result
}

fn man(out: &Path) -> Result<u8> {
    std::fs::create_dir_all(out)?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, out)
        .with_context(|| format!("cannot write man pages to {}", out.display()))?;
    println!("Wrote man pages to {}", out.display());
    Ok(0)
}
