//! connctl-engine: the state file, the planner and the applier. It prints nothing: the
//! applier reports progress as [`apply::Event`]s and the CLI renders them.

pub mod adopt;
pub mod apply;
pub mod backend;
pub mod drift;
pub mod edit;
pub mod fields;
pub mod immuta;
pub mod journal;
pub mod lock;
pub mod objects;
pub mod plan;
pub mod preflight;
pub mod refresh;
pub mod remote_lock;
pub mod saved;
pub mod state;
pub mod status;
pub mod store;
mod tasks;
