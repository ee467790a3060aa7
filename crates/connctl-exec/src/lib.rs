//! placeholder
pub mod split;
