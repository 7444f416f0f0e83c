//! Hostile invocations running at the same time as well-behaved ones, on
//! a runtime with fewer instance slots than invocations: every hostile one
//! ends with its own error, every well-behaved one finishes, and the ones
//! that did not find a free slot waited for one instead of failing.

mod common;

use common::scratch;
use domicile_host::{HostError, LimitKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_runs_finish_while_hostile_ones_are_stopped() {
    let home = scratch(|config| config.max_concurrent = 3);
    let (runtime, space) = (home.runtime.clone(), home.space.clone());
    home.install("hostile");
    home.install("snooper");

    let mut tasks = Vec::new();
    let attacks = ["spin", "recursion", "host-call-flood", "spin", "document-flood", "panic", "spin"];
    for (i, attack) in attacks.iter().enumerate() {
        for (app, input) in [
            ("org.example.test.hostile", format!(r#"{{"attack": "{attack}"}}"#)),
            ("org.example.test.snooper", r#"{"doctype": "io.domicile.mobility.trip"}"#.to_owned()),
        ] {
            let (runtime, space) = (runtime.clone(), space.clone());
            tasks.push(tokio::spawn(async move {
                let result = runtime.run_service(&space, &app.parse().unwrap(), &input).await;
                (i, app, result)
            }));
        }
    }
    for task in tasks {
        let (i, app, result) = task.await.unwrap();
        if app == "org.example.test.snooper" {
            let output = result.unwrap_or_else(|e| panic!("a well-behaved run failed: {e}"));
            assert!(output.contains("bike"), "{output}");
            continue;
        }
        let err = result.expect_err("a hostile run must fail");
        let ok = matches!(
            (attacks[i], &err),
            ("spin", HostError::Limit { kind: LimitKind::WallTime | LimitKind::Cpu, .. })
                | ("host-call-flood", HostError::Limit { kind: LimitKind::HostCalls, .. })
                | ("document-flood", HostError::Limit { kind: LimitKind::Documents, .. })
                | ("recursion" | "panic", HostError::Trap { .. })
        );
        assert!(ok, "{}: unexpected {err}", attacks[i]);
    }
}
