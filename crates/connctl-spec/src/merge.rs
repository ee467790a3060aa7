//! From a connection as written to a [`Connection`]: `defaults:` merged under it (the
//! connection's own value wins, field by field), every default applied, and relative secret
//! files anchored to the spec file's folder.

use std::path::Path;

use crate::model::{
    Connection, ConnectionSpec, Databricks, DatabricksAuth, Defaults, Options, OptionsSpec, Origin, Platform,
    Settings, SettingsSpec, Snowflake, SnowflakeAuth,
};

/// Port when none is given.
pub const DEFAULT_PORT: u16 = 443;
/// `settings.isActive` when none is given (Immuta's recommendation).
pub const DEFAULT_IS_ACTIVE: bool = false;
/// `options.forceRecursiveCrawl` when none is given (Immuta's recommendation).
pub const DEFAULT_FORCE_RECURSIVE_CRAWL: bool = true;

pub(crate) fn build(spec: ConnectionSpec, defaults: &Defaults, origin: Origin, base: &Path) -> Connection {
    match spec {
        ConnectionSpec::Snowflake(s) => Connection {
            key: s.key,
            origin,
            protect: s.protect.or(defaults.protect).unwrap_or(false),
            executor: s.executor.or(defaults.executor),
            settings: settings(s.settings, defaults),
            options: options(s.options, defaults),
            platform: Platform::Snowflake(Snowflake {
                host: s.host,
                port: s.port.unwrap_or(DEFAULT_PORT),
                warehouse: s.warehouse,
                database: s.database,
                role: s.role,
                auth: anchor_snowflake(s.auth, base),
                audit: s.audit,
                workspaces: s.workspaces,
                impersonation: s.impersonation,
                lineage: s.lineage,
                user_role_pattern: s.user_role_pattern,
            }),
        },
        ConnectionSpec::Databricks(d) => Connection {
            key: d.key,
            origin,
            protect: d.protect.or(defaults.protect).unwrap_or(false),
            executor: d.executor.or(defaults.executor),
            settings: settings(d.settings, defaults),
            options: options(d.options, defaults),
            platform: Platform::Databricks(Databricks {
                workspace_url: d.workspace_url,
                http_path: d.http_path,
                port: d.port.unwrap_or(DEFAULT_PORT),
                catalog: d.catalog,
                auth: anchor_databricks(d.auth, base),
                audit: d.audit,
                workspace_ids: d.workspace_ids,
                enable_native_query_parsing: d.enable_native_query_parsing,
                group_pattern: d.group_pattern,
                job_config: d.job_config,
            }),
        },
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

fn anchor_snowflake(auth: SnowflakeAuth, base: &Path) -> SnowflakeAuth {
    match auth {
        SnowflakeAuth::UserPassword { username, password } => SnowflakeAuth::UserPassword {
            username,
            password: password.anchored(base),
        },
        SnowflakeAuth::KeyPair {
            username,
            private_key,
            private_key_password,
        } => SnowflakeAuth::KeyPair {
            username,
            private_key: private_key.anchored(base),
            private_key_password: private_key_password.map(|p| p.anchored(base)),
        },
        SnowflakeAuth::OAuthClientCredentials {
            provider,
            client_id,
            authority_url,
            resource,
            client_secret,
            public_certificate_thumbprint,
            private_key,
        } => SnowflakeAuth::OAuthClientCredentials {
            provider,
            client_id,
            authority_url,
            resource,
            client_secret: client_secret.map(|s| s.anchored(base)),
            public_certificate_thumbprint,
            private_key: private_key.map(|k| k.anchored(base)),
        },
    }
}

fn anchor_databricks(auth: DatabricksAuth, base: &Path) -> DatabricksAuth {
    match auth {
        DatabricksAuth::Token { token } => DatabricksAuth::Token {
            token: token.anchored(base),
        },
        DatabricksAuth::OAuthM2M {
            client_id,
            client_secret,
            authority_url,
            scope,
        } => DatabricksAuth::OAuthM2M {
            client_id,
            client_secret: client_secret.anchored(base),
            authority_url,
            scope,
        },
    }
}
