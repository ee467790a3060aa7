//! What Immuta shows of a connection in the state, for `connctl status`: the rule that turns
//! the state entry and a refresh into one verdict, typed so the views match on it.

use std::fmt;

use serde::Serialize;

use crate::plan::HealthKind;
use crate::refresh::Live;
use crate::state::{ConnectionState, PendingOp};

/// One connection as Immuta shows it now. Its text form is the status table's `IMMUTA`
/// column and the `immuta` key of `status --format json` (docs/plan-json.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImmutaView {
    /// Immuta was not read.
    Unknown,
    /// The state never registered it.
    NeverRegistered,
    /// Gone from Immuta, deleted outside connctl.
    Missing,
    /// Gone from Immuta while connctl's own delete is pending: not a deletion behind its back.
    Deleting,
    /// Health problems Immuta reports (a failed or missing integration, a missing object).
    Unhealthy(Vec<HealthKind>),
    /// A field changed in Immuta since the last apply (`connctl drift` shows which).
    Drifted,
    Ok,
    /// In Immuta, in no state.
    Unmanaged,
}

impl ImmutaView {
    /// The verdict for `key`, from its state entry and what a refresh read (`None`: not read).
    pub fn of(key: &str, s: &ConnectionState, live: Option<&Live>) -> ImmutaView {
        let Some(live) = live else {
            return ImmutaView::Unknown;
        };
        if s.applied.is_none() {
            return ImmutaView::NeverRegistered;
        }
        if !live.keys.contains(key) {
            let deleting = s
                .pending
                .as_ref()
                .is_some_and(|p| p.operation == PendingOp::Delete);
            return if deleting {
                ImmutaView::Deleting
            } else {
                ImmutaView::Missing
            };
        }
        let problems: Vec<HealthKind> = live
            .health
            .iter()
            .filter(|h| h.key == key)
            .map(|h| h.kind)
            .collect();
        if !problems.is_empty() {
            return ImmutaView::Unhealthy(problems);
        }
        let drifted = match (&s.applied, live.fields.get(key)) {
            (Some(applied), Some(seen)) => seen
                .iter()
                .any(|(path, now)| applied.get(path).is_some_and(|was| was != now)),
            _ => false,
        };
        if drifted {
            ImmutaView::Drifted
        } else {
            ImmutaView::Ok
        }
    }

    /// Whether the connection is gone from Immuta (its last job says nothing any more).
    pub fn is_missing(&self) -> bool {
        matches!(self, ImmutaView::Missing)
    }
}

impl fmt::Display for ImmutaView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImmutaView::Unknown => f.write_str("unknown"),
            ImmutaView::NeverRegistered => f.write_str("-"),
            ImmutaView::Missing => f.write_str("missing"),
            ImmutaView::Deleting => f.write_str("deleting"),
            ImmutaView::Unhealthy(kinds) => {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                f.write_str(&names.join(", "))
            }
            ImmutaView::Drifted => f.write_str("drifted"),
            ImmutaView::Ok => f.write_str("ok"),
            ImmutaView::Unmanaged => f.write_str("unmanaged"),
        }
    }
}

impl Serialize for ImmutaView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
