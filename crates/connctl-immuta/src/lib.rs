//! connctl-immuta: the Immuta side. Builds the three payloads from a validated connection
//! ([`payload`]) and talks to Immuta's REST API ([`client`]). Knows nothing of state or plans.

pub mod client;
pub mod error;
pub mod live;
pub mod payload;

pub use client::{ClientConfig, ImmutaClient, check_url};
pub use error::{ApiError, RedirectRefusal};
pub use live::{
    Job, LiveConnection, LiveIntegration, LiveObject, ObjectHit, Registered, Script, SearchPage, jobs_from,
};
