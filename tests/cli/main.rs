//! End-to-end tests: the real `connctl` binary against the real emulator over HTTP on
//! 127.0.0.1, in the style of jj's `cli/tests`: one file per command, a shared [`TestEnv`].

// Test helpers may panic on anything unexpected; that is how a test fails.
#![allow(clippy::unwrap_used)]

mod servers;
mod support;

mod test_apply;
mod test_crash;
mod test_crawl_export;
mod test_docs;
mod test_drift;
mod test_env;
mod test_errors;
mod test_help;
mod test_http;
mod test_immuta_truth;
mod test_journal;
mod test_lost_answers;
mod test_objects;
mod test_objects_emulator;
mod test_plan;
mod test_preflight;
mod test_preflight_access;
mod test_refresh_changed;
mod test_reliability_bad_input;
mod test_reliability_concurrency;
mod test_reliability_faults;
mod test_reliability_secrets;
mod test_reliability_state_reader;
mod test_remote_state;
mod test_render;
mod test_scrub;
mod test_secret;
mod test_shapes;
mod test_state;
mod test_validate;
