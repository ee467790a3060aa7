//! A saved plan's freshness: whether a plan made with `plan --out` may still be applied
//! against the state and Immuta as they are now. `apply PLAN` applies exactly what was
//! reviewed, so anything that moved since (the tenant, the state, Immuta, the YAML or a
//! secret) refuses it rather than applying a plan nobody saw.

use crate::plan::Plan;
use crate::state::{State, normalise_tenant};

/// Why a saved plan may not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StalePlan {
    #[error(
        "this plan was made without connection secrets (--no-secrets, or a secret that did not resolve), so it cannot be applied"
    )]
    SecretsUnknown,
    #[error("the saved plan was made for environment {}, but this run is for {}", env_name(.made_for), env_name(.now))]
    OtherEnvironment {
        made_for: Option<String>,
        now: Option<String>,
    },
    #[error("the saved plan was made for the Immuta tenant {made_for}, but this run uses {now}")]
    OtherTenant { made_for: String, now: String },
    #[error("stale plan: it was made for another state (lineage {lineage})")]
    OtherState { lineage: String },
    #[error("stale plan: the state changed since the plan was made (serial {then} then, {now} now)")]
    StateChanged { then: u64, now: u64 },
    #[error("stale plan: Immuta changed since the plan was made ({})", .keys.join(", "))]
    ImmutaChanged { keys: Vec<String> },
    #[error("stale plan: the YAML or a secret changed since the plan was made ({})", .keys.join(", "))]
    DesiredChanged { keys: Vec<String> },
}

impl StalePlan {
    /// What the user can do about it.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            StalePlan::SecretsUnknown => {
                Some("plan again where the secrets resolve: `connctl plan --out plan.json`")
            }
            StalePlan::OtherTenant { .. }
            | StalePlan::OtherState { .. }
            | StalePlan::OtherEnvironment { .. } => None,
            StalePlan::StateChanged { .. }
            | StalePlan::ImmutaChanged { .. }
            | StalePlan::DesiredChanged { .. } => Some("run `connctl plan --out` again"),
        }
    }
}

/// `` `prod` `` for a named environment, `(none)` for none.
fn env_name(environment: &Option<String>) -> String {
    environment
        .as_deref()
        .map_or("(none)".into(), |e| format!("`{e}`"))
}

/// Checks that `saved` can be applied at all in this run: it was made with its secrets
/// resolved, and for this connctl.toml environment (`environment`, `None` without one).
pub fn check_made_for(saved: &Plan, environment: Option<&str>) -> Result<(), StalePlan> {
    if saved.state.secrets_unknown {
        return Err(StalePlan::SecretsUnknown);
    }
    if saved.state.environment.as_deref() != environment {
        return Err(StalePlan::OtherEnvironment {
            made_for: saved.state.environment.clone(),
            now: environment.map(str::to_owned),
        });
    }
    Ok(())
}

/// A plan made before any state existed gives a new state its identity (lineage and salt),
/// so that the plan's fingerprints compare with the ones made against that state.
pub fn adopt_identity(state: &mut State, saved: &Plan) {
    if state.serial == 0 && saved.state.serial == 0 {
        state.lineage = saved.state.lineage.clone();
        state.salt = saved.state.salt.clone();
    }
}

/// Checks, before planning again, that `saved` was made for this tenant (`immuta_url`, when
/// set) and this very state (same lineage and serial).
pub fn check_state(saved: &Plan, state: &State, immuta_url: Option<&str>) -> Result<(), StalePlan> {
    if let (Some(made_for), Some(url)) = (&saved.state.tenant, immuta_url) {
        let now = normalise_tenant(url);
        if *made_for != now {
            return Err(StalePlan::OtherTenant {
                made_for: made_for.clone(),
                now,
            });
        }
    }
    if saved.state.lineage != state.lineage && state.serial > 0 {
        return Err(StalePlan::OtherState {
            lineage: saved.state.lineage.clone(),
        });
    }
    if saved.state.serial != state.serial {
        return Err(StalePlan::StateChanged {
            then: saved.state.serial,
            now: state.serial,
        });
    }
    Ok(())
}

/// Checks that planning again (`fresh`) saw what `saved` saw: the same connections in Immuta,
/// then the same YAML and secrets (each compared by fingerprint, key by key).
pub fn check_fingerprints(saved: &Plan, fresh: &Plan) -> Result<(), StalePlan> {
    let moved = |then: &std::collections::BTreeMap<String, String>,
                 now: &std::collections::BTreeMap<String, String>| {
        then.iter()
            .filter(|(k, v)| now.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    let keys = moved(&saved.live_fingerprints, &fresh.live_fingerprints);
    if !keys.is_empty() {
        return Err(StalePlan::ImmutaChanged { keys });
    }
    let keys = moved(&saved.desired_fingerprints, &fresh.desired_fingerprints);
    if !keys.is_empty() {
        return Err(StalePlan::DesiredChanged { keys });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{PlanOptions, plan};

    fn plan_of(state: &State) -> Plan {
        plan(&BTreeMap::new(), state, None, &PlanOptions::default(), vec![]).unwrap()
    }

    fn state_at(serial: u64) -> State {
        let mut s = State::new();
        s.serial = serial;
        s
    }

    #[test]
    fn a_plan_of_this_state_is_fresh() {
        let state = state_at(3);
        let saved = plan_of(&state);
        assert_eq!(check_state(&saved, &state, None), Ok(()));
        assert_eq!(check_fingerprints(&saved, &plan_of(&state)), Ok(()));
    }

    #[test]
    fn a_newer_serial_is_refused_with_help() {
        let state = state_at(3);
        let saved = plan_of(&state);
        let mut now = state_at(4);
        now.lineage = state.lineage.clone();
        let err = check_state(&saved, &now, None).unwrap_err();
        assert_eq!(err, StalePlan::StateChanged { then: 3, now: 4 });
        assert_eq!(
            err.to_string(),
            "stale plan: the state changed since the plan was made (serial 3 then, 4 now)"
        );
        assert_eq!(err.help(), Some("run `connctl plan --out` again"));
    }

    #[test]
    fn another_lineage_is_refused_once_the_state_exists() {
        let saved = plan_of(&state_at(3));
        let other = state_at(3);
        assert!(matches!(
            check_state(&saved, &other, None),
            Err(StalePlan::OtherState { .. })
        ));
        // A state never written yet takes the plan's identity instead.
        let mut empty = state_at(0);
        let saved = plan_of(&state_at(0));
        adopt_identity(&mut empty, &saved);
        assert_eq!(empty.lineage, saved.state.lineage);
        assert_eq!(empty.salt, saved.state.salt);
        assert_eq!(check_state(&saved, &empty, None), Ok(()));
    }

    #[test]
    fn adopt_identity_leaves_a_written_state_alone() {
        let mut state = state_at(2);
        let lineage = state.lineage.clone();
        adopt_identity(&mut state, &plan_of(&state_at(0)));
        assert_eq!(state.lineage, lineage);
    }

    #[test]
    fn another_tenant_is_refused() {
        let state = state_at(1);
        let mut saved = plan_of(&state);
        saved.state.tenant = Some(normalise_tenant("https://a.example.com"));
        assert_eq!(
            check_state(&saved, &state, Some("https://a.example.com/")),
            Ok(())
        );
        let err = check_state(&saved, &state, Some("https://b.example.com")).unwrap_err();
        assert!(matches!(err, StalePlan::OtherTenant { .. }), "{err}");
        assert_eq!(err.help(), None);
    }

    #[test]
    fn moved_fingerprints_name_the_keys_immuta_first() {
        let state = state_at(1);
        let mut saved = plan_of(&state);
        saved.live_fingerprints.insert("a".into(), "x".into());
        saved.desired_fingerprints.insert("b".into(), "y".into());
        let mut fresh = saved.clone();
        fresh.live_fingerprints.insert("a".into(), "changed".into());
        fresh.desired_fingerprints.remove("b");
        assert_eq!(
            check_fingerprints(&saved, &fresh),
            Err(StalePlan::ImmutaChanged {
                keys: vec!["a".into()]
            })
        );
        fresh.live_fingerprints = saved.live_fingerprints.clone();
        let err = check_fingerprints(&saved, &fresh).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stale plan: the YAML or a secret changed since the plan was made (b)"
        );
    }

    #[test]
    fn a_plan_without_secrets_or_of_another_environment_is_refused() {
        let state = state_at(0);
        let mut saved = plan_of(&state);
        assert_eq!(check_made_for(&saved, None), Ok(()));
        saved.state.environment = Some("dev".into());
        let err = check_made_for(&saved, Some("prod")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the saved plan was made for environment `dev`, but this run is for `prod`"
        );
        assert_eq!(
            check_made_for(&saved, None).unwrap_err().to_string(),
            "the saved plan was made for environment `dev`, but this run is for (none)"
        );
        assert_eq!(check_made_for(&saved, Some("dev")), Ok(()));
        saved.state.secrets_unknown = true;
        let err = check_made_for(&saved, Some("dev")).unwrap_err();
        assert_eq!(err, StalePlan::SecretsUnknown);
        assert!(err.help().is_some_and(|h| h.contains("plan --out")));
    }
}
