//! The answers Immuta's docs leave open: `GET /jobs?bulkId=` and `POST /data/object/search`
//! in every shape connctl accepts, each produced by an emulator mode, end to end.

use connctl_emulator::{EmulatorConfig, JobsShape, SearchShape};

use crate::support::TestEnv;

fn env_with(config: EmulatorConfig) -> TestEnv {
    let env = TestEnv::with_emulator(EmulatorConfig {
        job_step_ms: 20,
        ..config
    });
    env.fixture("valid/all-variants");
    env
}

#[test]
fn apply_waits_for_jobs_in_every_shape() {
    for shape in [JobsShape::Array, JobsShape::Keyed, JobsShape::Envelope] {
        let env = env_with(EmulatorConfig {
            jobs_shape: shape,
            ..EmulatorConfig::default()
        });
        let out = env.run(&[
            "apply",
            "--auto-approve",
            "--wait",
            "valid/all-variants/databricks.yaml",
        ]);
        assert_eq!(
            out.code, 0,
            "{shape:?}\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        let state = env.state();
        for key in ["dbx-token", "dbx-m2m"] {
            let bulk = &state["connections"][key]["bulkIds"][0];
            assert_eq!(bulk["jobState"], "completed", "{shape:?} {key}: {bulk}");
        }
    }
}

#[test]
fn plan_reads_the_listing_in_every_shape() {
    for shape in [
        SearchShape::Hits,
        SearchShape::Results,
        SearchShape::Data,
        SearchShape::Array,
    ] {
        let env = env_with(EmulatorConfig {
            search_shape: shape,
            ..EmulatorConfig::default()
        });
        let out = env.run(&["apply", "--auto-approve", "valid/all-variants/databricks.yaml"]);
        assert_eq!(out.code, 0, "{shape:?}\n{}\n{}", out.stdout, out.stderr);
        env.admin(
            "POST",
            "/_emulator/seed",
            serde_json::json!({"connections": [unmanaged("unmanaged-one")]}),
        );

        let plan = env.run(&[
            "plan",
            "--detailed-exitcode",
            "valid/all-variants/databricks.yaml",
        ]);
        // The applied connections are seen as existing (no create), the other one as unmanaged.
        assert_eq!(plan.code, 0, "{shape:?}\n{}\n{}", plan.stdout, plan.stderr);
        // The same plan for every shape.
        insta::allow_duplicates! {
            insta::assert_snapshot!(plan.snapshot(), @"
            exit: 0
            --- stdout
            No changes. Immuta matches the configuration.
            Unmanaged (in Immuta, never touched): unmanaged-one

            Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 unmanaged)
            Immuta: [URL]
            --- stderr
            ");
        }
        assert_eq!(
            env.count_requests("POST", "/data/object/search"),
            2,
            "{shape:?}: one page per run"
        );
    }
}

fn unmanaged(key: &str) -> serde_json::Value {
    serde_json::json!({"connectionKey": key, "connection": {"technology": "Databricks", "hostname": "dbc-9.cloud.databricks.com", "port": 443, "httpPath": "/sql/1.0/warehouses/w9", "authenticationType": "token", "token": "t"}, "nativeIntegration": {"type": "Databricks", "autoBootstrap": false, "unityCatalog": true, "config": {"host": "dbc-9.cloud.databricks.com", "port": 443, "authenticationType": "token", "token": "t", "catalog": "immuta_other", "audit": {"enabled": false}}}})
}
