//! Bulk jobs: `GET /jobs?bulkId=…` and `POST /jobs/statuses`; every bulkId has one job moving
//! `created → active → completed`, one state per `job_step_ms`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, parse_object};
use crate::server::Shared;
use crate::store::{job_state, now_ms};

pub async fn by_bulk(
    State(st): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let Some(bulk) = q.get("bulkId").filter(|b| !b.is_empty()) else {
        return Err(ApiError::bad_request("bulkId: required"));
    };
    let step = st.step_ms();
    st.read(|s| {
        let ids = s
            .bulks
            .get(bulk)
            .ok_or_else(|| ApiError::not_found(format!("No jobs found for bulkId {bulk}.")))?;
        let now = now_ms();
        let jobs: Vec<Value> = ids
            .iter()
            .filter_map(|id| s.jobs.get(id))
            .map(|j| json!({"id": j.id, "state": job_state(j, now, step), "output": null}))
            .collect();
        Ok(Json(super::shapes::jobs(st.cfg.jobs_shape, jobs)))
    })
}

pub async fn statuses(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let v = parse_object(&body)?;
    let mut errs = Vec::new();
    let ids: Vec<String> = match v.get("jobIds") {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, x)| match x.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    errs.push(format!("jobIds[{i}]: expected string"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            errs.push("jobIds: expected array of strings".into());
            vec![]
        }
        None => {
            errs.push("jobIds: required".into());
            vec![]
        }
    };
    let wait = match v.get("wait") {
        None => 0.0,
        Some(x) => x.as_f64().unwrap_or_else(|| {
            errs.push("wait: expected number".into());
            0.0
        }),
    };
    match v.get("pollInterval") {
        None => {}
        Some(x) => match x.as_f64() {
            Some(p) if p >= 1.0 => {}
            Some(_) => errs.push("pollInterval: must be at least 1".into()),
            None => errs.push("pollInterval: expected number".into()),
        },
    }
    for k in v
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !matches!(k.as_str(), "jobIds" | "wait" | "pollInterval") {
            errs.push(format!("{k}: unknown field (known: jobIds, wait, pollInterval)"));
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::bad_request(errs.join("; ")));
    }
    let step = st.step_ms();
    let latest = st.read(|s| {
        let mut latest = 0u64;
        for id in &ids {
            let j = s
                .jobs
                .get(id)
                .ok_or_else(|| ApiError::not_found(format!("No job found with id {id}.")))?;
            latest = latest.max(j.created_ms + 2 * step);
        }
        Ok::<u64, ApiError>(latest)
    })?;
    if wait != 0.0 {
        let now = now_ms();
        let until = if wait < 0.0 {
            latest
        } else {
            latest.min(now + (wait * 1000.0) as u64)
        };
        if until > now {
            tokio::time::sleep(Duration::from_millis(until - now)).await;
        }
    }
    let now = now_ms();
    st.read(|s| {
        let mut out = Map::new();
        for id in &ids {
            if let Some(j) = s.jobs.get(id) {
                out.insert(
                    id.clone(),
                    json!({"id": j.id, "state": job_state(j, now, step), "output": null}),
                );
            }
        }
        Ok(Json(Value::Object(out)))
    })
}
