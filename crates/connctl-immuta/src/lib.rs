//! connctl-immuta: the Immuta side. Builds the three payloads from a validated connection
//! ([`payload`]), reads Immuta's answers back into the spec's vocabulary ([`read`]), and talks
//! to Immuta's REST API ([`client`]). Knows nothing of state or plans. Immuta's JSON field names
//! of each technology are written and read in one module per technology (`snowflake`,
//! `databricks`).

pub mod client;
mod common;
mod databricks;
pub mod error;
pub mod live;
pub mod payload;
pub mod read;
mod response;
mod snowflake;
mod transport;

pub use client::listing::pages_at_once;
pub use client::{ClientConfig, ImmutaClient, check_url, object_url_path};
pub use error::{ApiError, RedirectRefusal};
pub use live::{
    Job, JobState, LiveConnection, LiveIntegration, LiveObject, ObjectHit, Registered, Script, SearchPage,
    jobs_from,
};
