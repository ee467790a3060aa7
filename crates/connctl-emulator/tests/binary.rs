//! The built `connctl-emulator` binary: `--help` documents every flag; it prints its address
//! first, starts quickly and serves 1,000 sequential GETs without error.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_connctl-emulator");

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--api-key",
        "--latency-ms",
        "--jitter-ms",
        "--fail-rate",
        "--rate-limit",
        "--seed",
        "--job-step-ms",
        "--state-file",
        "--warehouse-token",
        "--jobs-shape",
        "--search-shape",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    insta::assert_snapshot!(help);
}

#[test]
fn rejects_a_non_loopback_listen_address() {
    let out = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn starts_and_serves_a_thousand_sequential_gets() {
    let started = Instant::now();
    let mut child = Child(
        Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--api-key",
                "bin-key",
                "--job-step-ms",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let startup = started.elapsed();
    eprintln!("first line after {startup:?}: {line:?}");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("first line names the address")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/_emulator/seed"))
        .json(&json!({"connections": [common::sf_registration("bench")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let t = Instant::now();
    for i in 0..1000 {
        let r = http
            .get(format!("{url}/data/connection/bench"))
            .header("authorization", "bin-key")
            .send()
            .await;
        let r = r.unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "request {i}");
        let _ = r.bytes().await.unwrap();
    }
    eprintln!("1000 sequential GETs in {:?}", t.elapsed());
    let log: serde_json::Value = http
        .get(format!("{url}/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 1000);
    drop(child);
}

#[tokio::test]
async fn shape_flags_change_the_answers() {
    let mut child = Child(
        Command::new(BIN)
            .args([
                "--api-key",
                "bin-key",
                "--jobs-shape",
                "keyed",
                "--search-shape",
                "data",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap().to_string();
    let http = reqwest::Client::new();
    let seeded: serde_json::Value = http
        .post(format!("{url}/_emulator/seed"))
        .json(&json!({"connections": [common::sf_registration("shaped")]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let search: serde_json::Value = http
        .post(format!("{url}/data/object/search"))
        .header("authorization", "bin-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(search["data"][0]["objectPath"], json!(["shaped"]), "{search}");
    assert!(search.get("hits").is_none(), "{search}");

    // A settings change makes a bulk job; its jobs come keyed by id.
    let bulk: serde_json::Value = http
        .put(format!("{url}/data/settings/shaped"))
        .header("authorization", "bin-key")
        .json(&json!({"settings": {"isActive": true}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bulk_id = bulk["bulkId"]
        .as_str()
        .unwrap_or_else(|| panic!("{bulk} {seeded}"));
    let jobs: serde_json::Value = http
        .get(format!("{url}/jobs?bulkId={bulk_id}"))
        .header("authorization", "bin-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keyed = jobs.as_object().unwrap_or_else(|| panic!("{jobs}"));
    assert_eq!(keyed.len(), 1, "{jobs}");
    let (id, job) = keyed.iter().next().unwrap();
    assert_eq!(job["id"], json!(id), "{jobs}");
    drop(child);
}
