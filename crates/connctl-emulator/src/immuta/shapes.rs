//! The shapes of the two answers Immuta's docs leave open, chosen per emulator
//! ([`crate::EmulatorConfig::jobs_shape`], [`crate::EmulatorConfig::search_shape`]), so that
//! every shape connctl accepts is exercised end to end.

use serde_json::{Map, Value, json};

/// How `GET /jobs?bulkId=` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum JobsShape {
    /// A bare array of jobs.
    #[default]
    Array,
    /// An object keyed by job id (the documented shape of `POST /jobs/statuses`).
    Keyed,
    /// `{"jobs": [...]}`.
    Envelope,
}

/// How `POST /data/object/search` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchShape {
    /// `{"hits": [...], "count": N}`.
    #[default]
    Hits,
    /// `{"results": [...], "total": N}`.
    Results,
    /// `{"data": [...]}` without a total.
    Data,
    /// A bare array of hits.
    Array,
}

/// The answer of `GET /jobs?bulkId=` for these jobs (each has an `id`).
pub fn jobs(shape: JobsShape, jobs: Vec<Value>) -> Value {
    match shape {
        JobsShape::Array => Value::Array(jobs),
        JobsShape::Keyed => {
            let mut by_id = Map::new();
            for job in jobs {
                let id = job
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                by_id.insert(id, job);
            }
            Value::Object(by_id)
        }
        JobsShape::Envelope => json!({ "jobs": jobs }),
    }
}

/// The answer of `POST /data/object/search` for one page of hits out of `total`.
pub fn search(shape: SearchShape, hits: Vec<Value>, total: usize) -> Value {
    match shape {
        SearchShape::Hits => json!({ "hits": hits, "count": total }),
        SearchShape::Results => json!({ "results": hits, "total": total }),
        SearchShape::Data => json!({ "data": hits }),
        SearchShape::Array => Value::Array(hits),
    }
}
