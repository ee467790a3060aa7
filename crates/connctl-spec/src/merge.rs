//! From a connection as written to a [`Connection`]: `defaults:` merged under it (the
//! connection's own value wins, field by field), every default applied, and relative secret
//! files anchored to the spec file's folder (each technology module anchors its own).

use std::path::Path;

use crate::common::{CommonSpec, Options, OptionsSpec, Origin, Settings, SettingsSpec};
use crate::model::{Connection, ConnectionSpec, Defaults, Platform};

/// `settings.isActive` when none is given (Immuta's recommendation).
pub const DEFAULT_IS_ACTIVE: bool = false;
/// `options.forceRecursiveCrawl` when none is given (Immuta's recommendation).
pub const DEFAULT_FORCE_RECURSIVE_CRAWL: bool = true;

pub(crate) fn build(spec: ConnectionSpec, defaults: &Defaults, origin: Origin, base: &Path) -> Connection {
    let (common, platform) = match spec {
        ConnectionSpec::Snowflake(s) => {
            let (common, sf) = s.split(base);
            (common, Platform::Snowflake(sf))
        }
        ConnectionSpec::Databricks(d) => {
            let (common, db) = d.split(base);
            (common, Platform::Databricks(db))
        }
    };
    let CommonSpec {
        key,
        protect,
        executor,
        settings: own_settings,
        options: own_options,
        objects,
    } = common;
    Connection {
        key,
        origin,
        protect: protect.or(defaults.protect).unwrap_or(false),
        executor: executor.or(defaults.executor),
        settings: settings(own_settings, defaults),
        options: options(own_options, defaults),
        objects,
        platform,
    }
}

fn settings(own: Option<SettingsSpec>, defaults: &Defaults) -> Settings {
    let own = own.unwrap_or_default();
    let fallback = defaults.settings.unwrap_or_default();
    Settings {
        is_active: own.is_active.or(fallback.is_active).unwrap_or(DEFAULT_IS_ACTIVE),
        activate_new_children: own.activate_new_children.or(fallback.activate_new_children),
    }
}

fn options(own: Option<OptionsSpec>, defaults: &Defaults) -> Options {
    let own = own.unwrap_or_default();
    let fallback = defaults.options.unwrap_or_default();
    Options {
        force_recursive_crawl: own
            .force_recursive_crawl
            .or(fallback.force_recursive_crawl)
            .unwrap_or(DEFAULT_FORCE_RECURSIVE_CRAWL),
    }
}
