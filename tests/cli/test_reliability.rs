//! Reliability suites (being written).
