//! Apply progress: on a terminal, an overall bar (done/total, elapsed, the steps in flight)
//! above one line per connection with its current step (indicatif); otherwise plain lines, one
//! per step, each led by the time since apply started, and a `[done/total]` count when a
//! connection finishes — they read well in CI logs, which have no timestamps of their own.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use connctl_engine::apply::{Event, EventKind, Outcome};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Per connection key: its spinner and the step it is at (`None` once finished).
type Bars = Arc<Mutex<HashMap<String, (ProgressBar, Option<&'static str>)>>>;

pub struct Progress {
    bars: Option<(MultiProgress, Bars, ProgressBar)>,
    total: usize,
    done: Arc<AtomicUsize>,
    started: Instant,
}

impl Progress {
    /// `total`: the connections apply will work on.
    pub fn new(total: usize, _color: bool) -> Progress {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            overall.enable_steady_tick(std::time::Duration::from_millis(250));
            (multi, Arc::new(Mutex::new(HashMap::new())), overall)
        });
        Progress {
            bars,
            total,
            done: Arc::new(AtomicUsize::new(0)),
            started: Instant::now(),
        }
    }

    pub fn sink(&self) -> Arc<dyn Fn(Event) + Send + Sync> {
        let (done, total, started) = (self.done.clone(), self.total, self.started);
        match &self.bars {
            Some((multi, bars, overall)) => {
                let (multi, bars, overall) = (multi.clone(), bars.clone(), overall.clone());
                Arc::new(move |event: Event| {
                    let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                    let (bar, step) = bars.entry(event.key.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {prefix:<30} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(event.key.clone());
                        bar.enable_steady_tick(std::time::Duration::from_millis(120));
                        (bar, None)
                    });
                    match event.kind {
                        EventKind::Started(action) => {
                            *step = Some(action.as_str());
                            bar.set_message(action.as_str().to_owned());
                        }
                        EventKind::Step(task) => {
                            *step = Some(task.label());
                            bar.set_message(task.label());
                        }
                        EventKind::Finished(outcome) => {
                            *step = None;
                            bar.finish_with_message(describe(&outcome));
                            done.fetch_add(1, Ordering::Relaxed);
                            overall.inc(1);
                        }
                    }
                    overall.set_message(in_flight(bars.values().filter_map(|(_, s)| *s)));
                })
            }
            None => Arc::new(move |event: Event| {
                let text = match event.kind {
                    EventKind::Started(action) => format!("{}: {}", event.key, action.as_str()),
                    EventKind::Step(step) => format!("{}: {}", event.key, step.label()),
                    EventKind::Finished(outcome) => {
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        format!("{}: {} [{n}/{total}]", event.key, describe(&outcome))
                    }
                };
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!("[{elapsed:>7.1}s] {}", connctl_spec::redact(&text));
            }),
        }
    }

    pub fn finish(&self) {
        if let Some((multi, _, overall)) = &self.bars {
            overall.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

/// The steps in flight, counted: `script ×3, register`.
fn in_flight<'a>(steps: impl Iterator<Item = &'a str>) -> String {
    let mut counts = BTreeMap::new();
    for step in steps {
        *counts.entry(step).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .map(|(step, n)| {
            if n == 1 {
                step.to_owned()
            } else {
                format!("{step} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { detail } => format!("done ({})", connctl_spec::redact(detail)),
        Outcome::AwaitingExecution { .. } => "awaiting execution of the saved script".into(),
        Outcome::Skipped { reason } => format!("skipped ({})", connctl_spec::redact(reason)),
        Outcome::Failed { .. } => "failed".into(),
        Outcome::Interrupted { .. } => "interrupted".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_in_flight_are_counted() {
        assert_eq!(
            in_flight(["script", "register", "script", "script"].into_iter()),
            "register, script ×3"
        );
        assert_eq!(in_flight(std::iter::empty()), "");
    }
}
