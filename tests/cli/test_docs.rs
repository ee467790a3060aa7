//! Docs and CI recipes (being written).
