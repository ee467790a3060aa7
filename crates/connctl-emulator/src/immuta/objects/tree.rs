//! The object tree of one connection: finding objects, the cascade of a status change, the
//! inheritance of `activateNewChildren`, override flags, and a crawl discovering what a seed
//! put in the warehouse. The connection is the root (path `[]`); its status and settings are in
//! `Connection::settings`, every deeper object is a [`Child`].

use crate::store::{Child, Connection};

/// The deepest object below a connection: database, schema, table.
pub const MAX_DEPTH: usize = 3;

/// A setting whose overrides below an object are reported (`hasDescendantsWithOverrides`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    IsActive,
    ActivateNewChildren,
}

impl Connection {
    /// A known (crawled) object below the connection.
    pub fn find(&self, rest: &[String]) -> Option<&Child> {
        self.children.iter().find(|c| c.crawled && c.path == rest)
    }

    pub fn find_mut(&mut self, rest: &[String]) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.crawled && c.path == rest)
    }

    /// Whether Immuta knows the object (the connection itself always).
    pub fn knows(&self, rest: &[String]) -> bool {
        rest.is_empty() || self.find(rest).is_some()
    }

    /// Every known object below `rest`, in path order.
    pub fn below<'a>(&'a self, rest: &'a [String]) -> impl Iterator<Item = &'a Child> + 'a {
        self.children
            .iter()
            .filter(move |c| c.crawled && c.path.len() > rest.len() && c.path.starts_with(rest))
    }

    /// The status of a known object.
    pub fn is_active_at(&self, rest: &[String]) -> bool {
        match self.find(rest) {
            Some(c) if !rest.is_empty() => c.active,
            _ => self.settings.is_active,
        }
    }

    /// The `activateNewChildren` in force at `rest`: its own, else its nearest ancestor's, else
    /// the connection's.
    pub fn activate_new_children_at(&self, rest: &[String]) -> bool {
        (1..=rest.len())
            .rev()
            .find_map(|n| self.find(&rest[..n]).and_then(|c| c.activate_new_children))
            .unwrap_or(self.settings.activate_new_children)
    }

    /// Whether an object below `rest` has `setting` set on itself.
    pub fn overrides_below(&self, rest: &[String], setting: Setting) -> bool {
        self.below(rest).any(|c| match setting {
            Setting::IsActive => c.active_override,
            Setting::ActivateNewChildren => c.activate_new_children.is_some(),
        })
    }

    /// Sets the status of `rest` as Immuta does: on the object (an override, below the
    /// connection) and on every known object below it, whose own status overrides are cleared.
    pub fn set_status(&mut self, rest: &[String], active: bool) {
        if rest.is_empty() {
            self.set_active(active);
            return;
        }
        for c in self.children.iter_mut().filter(|c| c.crawled) {
            if c.path == rest {
                c.active = active;
                c.active_override = true;
            } else if c.path.len() > rest.len() && c.path.starts_with(rest) {
                c.active = active;
                c.active_override = false;
            }
        }
    }

    /// Sets `activateNewChildren` on `rest` itself; objects below keep their own.
    pub fn set_activate_new_children(&mut self, rest: &[String], value: bool) {
        match self.find_mut(rest) {
            Some(c) if !rest.is_empty() => c.activate_new_children = Some(value),
            _ => self.settings.activate_new_children = value,
        }
    }

    /// Adds warehouse objects below `rest` (each a path relative to it), with any missing
    /// ancestors; they stay unknown to Immuta until a crawl. Existing paths are left alone.
    /// Answers how many were added, or why the seed is refused.
    pub fn seed(&mut self, rest: &[String], relative: &[Vec<String>]) -> Result<usize, String> {
        let exists = |c: &Connection, p: &[String]| p.is_empty() || c.children.iter().any(|x| x.path == p);
        if !exists(self, rest) {
            return Err(format!("no object {} to seed below", rest.join("/")));
        }
        let mut added = 0;
        for rel in relative {
            if rel.is_empty() || rel.iter().any(String::is_empty) {
                return Err("children: a path has an empty name".into());
            }
            let full: Vec<String> = rest.iter().chain(rel).cloned().collect();
            if full.len() > MAX_DEPTH {
                return Err(format!(
                    "children: {} is deeper than database/schema/table",
                    full.join("/")
                ));
            }
            for n in rest.len() + 1..=full.len() {
                if !exists(self, &full[..n]) {
                    let mut child = Child::new(full[..n].to_vec(), false);
                    child.crawled = false;
                    self.children.push(child);
                    added += 1;
                }
            }
        }
        self.children.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(added)
    }

    /// A crawl from `rest`: every warehouse object below it becomes known, active when the
    /// `activateNewChildren` in force at its parent says so. Answers how many were found.
    pub fn crawl(&mut self, rest: &[String]) -> usize {
        let mut found = 0;
        // Path order: a parent is known before its children look at its setting.
        for i in 0..self.children.len() {
            let c = &self.children[i];
            if c.crawled || c.path.len() <= rest.len() || !c.path.starts_with(rest) {
                continue;
            }
            let parent = c.path[..c.path.len() - 1].to_vec();
            let active = self.activate_new_children_at(&parent);
            let c = &mut self.children[i];
            c.active = active;
            c.crawled = true;
            found += 1;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('/')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn conn() -> Connection {
        let mut c: Connection = serde_json::from_value(serde_json::json!({
            "key": "k", "tech": "Snowflake", "connection": {},
            "settings": {"is_active": false, "activate_new_children": false,
                         "force_recursive_crawl": false, "extra": {}},
            "integration_id": 1, "created_ms": 0, "updated_ms": 0,
        }))
        .unwrap();
        for path in ["DB", "DB/S", "DB/S/T1", "DB/S/T2"] {
            c.children.push(Child::new(p(path), false));
        }
        c
    }

    #[test]
    fn a_status_cascades_and_clears_the_overrides_below() {
        let mut c = conn();
        c.set_status(&p("DB/S/T1"), true);
        assert!(c.is_active_at(&p("DB/S/T1")));
        assert!(c.overrides_below(&p("DB"), Setting::IsActive));
        assert!(!c.overrides_below(&p("DB"), Setting::ActivateNewChildren));
        c.set_status(&p("DB"), false);
        assert!(!c.is_active_at(&p("DB/S/T1")));
        assert!(!c.overrides_below(&p("DB"), Setting::IsActive));
        assert!(
            c.overrides_below(&[], Setting::IsActive),
            "DB's own status is an override"
        );
    }

    #[test]
    fn a_crawl_finds_seeded_objects_as_their_parent_says() {
        let mut c = conn();
        c.set_activate_new_children(&p("DB/S"), true);
        assert!(c.activate_new_children_at(&p("DB/S/T1")), "inherited");
        assert_eq!(c.seed(&p("DB"), &[p("S/T3"), p("NEW/X")]).unwrap(), 3);
        assert!(c.find(&p("DB/S/T3")).is_none(), "unknown until a crawl");
        assert!(c.seed(&p("DB"), &[p("A/B/C")]).is_err(), "too deep");
        assert_eq!(c.crawl(&p("DB")), 3);
        assert!(c.is_active_at(&p("DB/S/T3")));
        assert!(!c.is_active_at(&p("DB/NEW")));
        assert!(!c.is_active_at(&p("DB/NEW/X")));
    }
}
