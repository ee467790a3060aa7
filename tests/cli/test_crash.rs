//! Crash and resume (being written).
