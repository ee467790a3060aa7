//! Edits of the state that never touch Immuta: `state rm` (forget a connection),
//! `state unprotect`, and whether `state push` may replace a state with another file.

use crate::state::{Phase, State, Task};

/// An edit of one connection's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Forget the connection (`state rm`); Immuta keeps it, and `import` adopts it again.
    Forget,
    /// Lift `protect` (`state unprotect`), so the connection can be deleted once it leaves
    /// the YAML.
    Unprotect,
}

/// The key is not in the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` is not in the state")]
pub struct NotInState {
    pub key: String,
}

/// Applies `edit` to `key`'s entry of `state`.
pub fn edit(state: &mut State, key: &str, edit: Edit) -> Result<(), NotInState> {
    let not_in_state = || NotInState { key: key.to_owned() };
    match edit {
        Edit::Forget => state.connections.remove(key).map(drop).ok_or_else(not_in_state),
        Edit::Unprotect => {
            let s = state.connections.get_mut(key).ok_or_else(not_in_state)?;
            s.protect = false;
            s.journal(Task::Unprotect, Phase::Done, None);
            Ok(())
        }
    }
}

/// Why `state push` refuses to replace the current state with the pushed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushRefused {
    /// Different lineages: they are different states.
    OtherLineage { pushed: String, current: String },
    /// Not newer than the current state: pushing it would lose changes.
    NotNewer { pushed: u64, current: u64 },
    /// Written for another Immuta tenant.
    OtherTenant { pushed: String, current: String },
}

impl PushRefused {
    /// What the user can do about it.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            PushRefused::OtherLineage { .. } => {
                Some("push to an empty location, or pull this one first (`connctl state pull`)")
            }
            PushRefused::NotNewer { .. } => {
                Some("pull the current state (`connctl state pull`) and work from it")
            }
            PushRefused::OtherTenant { .. } => None,
        }
    }
}

/// Checks that `pushed` may replace `current` (the state at the destination, if any): the
/// same lineage at a newer serial, for the same tenant, so a stale copy cannot overwrite newer
/// work.
pub fn check_push(current: Option<&State>, pushed: &State) -> Result<(), PushRefused> {
    let Some(now) = current else { return Ok(()) };
    if now.lineage != pushed.lineage {
        return Err(PushRefused::OtherLineage {
            pushed: pushed.lineage.clone(),
            current: now.lineage.clone(),
        });
    }
    if pushed.serial <= now.serial {
        return Err(PushRefused::NotNewer {
            pushed: pushed.serial,
            current: now.serial,
        });
    }
    if let (Some(a), Some(b)) = (&now.tenant, &pushed.tenant)
        && a != b
    {
        return Err(PushRefused::OtherTenant {
            pushed: b.clone(),
            current: a.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ConnectionState;

    fn state() -> State {
        let mut state = State::new();
        let mut c = ConnectionState::new("Snowflake");
        c.protect = true;
        state.connections.insert("sf".into(), c);
        state
    }

    #[test]
    fn forget_removes_the_entry_and_nothing_else() {
        let mut s = state();
        s.connections
            .insert("other".into(), ConnectionState::new("Databricks"));
        edit(&mut s, "sf", Edit::Forget).unwrap();
        assert_eq!(s.connections.keys().collect::<Vec<_>>(), ["other"]);
    }

    #[test]
    fn unprotect_lifts_protect_and_journals_it() {
        let mut s = state();
        edit(&mut s, "sf", Edit::Unprotect).unwrap();
        let c = &s.connections["sf"];
        assert!(!c.protect);
        let last = c.journal.last().unwrap();
        assert_eq!((last.step, last.phase), (Task::Unprotect, Phase::Done));
    }

    #[test]
    fn an_unknown_key_is_refused_and_the_state_left_alone() {
        for e in [Edit::Forget, Edit::Unprotect] {
            let mut s = state();
            let before = s.clone();
            assert_eq!(edit(&mut s, "nope", e), Err(NotInState { key: "nope".into() }));
            assert_eq!(s, before);
        }
    }

    #[test]
    fn push_needs_the_same_lineage_at_a_newer_serial_and_tenant() {
        let mut now = State::new();
        now.serial = 5;
        let mut pushed = now.clone();
        pushed.serial = 6;
        assert_eq!(check_push(None, &State::new()), Ok(()));
        assert_eq!(check_push(Some(&now), &pushed), Ok(()));

        let other = State::new();
        let err = check_push(Some(&now), &other).unwrap_err();
        assert!(matches!(err, PushRefused::OtherLineage { .. }));
        assert!(err.help().is_some_and(|h| h.contains("state pull")));

        pushed.serial = 5;
        assert_eq!(
            check_push(Some(&now), &pushed),
            Err(PushRefused::NotNewer {
                pushed: 5,
                current: 5
            })
        );

        pushed.serial = 6;
        now.tenant = Some("https://a".into());
        pushed.tenant = Some("https://b".into());
        assert_eq!(
            check_push(Some(&now), &pushed),
            Err(PushRefused::OtherTenant {
                pushed: "https://b".into(),
                current: "https://a".into()
            })
        );
    }
}
