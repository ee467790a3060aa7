//! Apply progress: on a terminal, one line per connection with its current step (indicatif);
//! otherwise plain log lines, one per step, that read well in CI logs.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use connctl_engine::apply::{Event, EventKind, Outcome};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One spinner per connection key.
type Bars = Arc<Mutex<HashMap<String, ProgressBar>>>;

pub struct Progress {
    bars: Option<(MultiProgress, Bars)>,
}

impl Progress {
    pub fn new(_total: usize, _color: bool) -> Progress {
        if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            Progress {
                bars: Some((multi, Arc::new(Mutex::new(HashMap::new())))),
            }
        } else {
            Progress { bars: None }
        }
    }

    pub fn sink(&self) -> Arc<dyn Fn(Event) + Send + Sync> {
        match &self.bars {
            Some((multi, bars)) => {
                let multi = multi.clone();
                let bars = bars.clone();
                Arc::new(move |event: Event| {
                    let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                    let bar = bars.entry(event.key.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {prefix:<30} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(event.key.clone());
                        bar.enable_steady_tick(std::time::Duration::from_millis(120));
                        bar
                    });
                    match event.kind {
                        EventKind::Started(action) => bar.set_message(action.as_str().to_owned()),
                        EventKind::Step(step) => bar.set_message(step.label()),
                        EventKind::Finished(outcome) => bar.finish_with_message(describe(&outcome)),
                    }
                })
            }
            None => Arc::new(|event: Event| {
                let text = match event.kind {
                    EventKind::Started(action) => format!("{}: {}", event.key, action.as_str()),
                    EventKind::Step(step) => format!("{}: {}", event.key, step.label()),
                    EventKind::Finished(outcome) => format!("{}: {}", event.key, describe(&outcome)),
                };
                eprintln!("{}", connctl_spec::redact(&text));
            }),
        }
    }

    pub fn finish(&self) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
        }
    }
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
