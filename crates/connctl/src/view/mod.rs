//! The views: everything connctl shows a person or a program, in one place. Commands work out
//! their results through the library crates and hand them here; nothing else prints (errors
//! are rendered once, in `main`).

pub mod apply;
pub mod crawl;
pub mod import;
pub mod notice;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod state;
pub mod status;
