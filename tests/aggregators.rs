//! A campaign's two aggregators as their organisations run them: two real
//! `domicile aggregator serve` processes on loopback, each with its own
//! store and key. Residents' reports go to the leader; a duplicate and a
//! late one are refused and counted; the helper answers the leader alone;
//! after the deadline the aggregate is exactly the histogram of the
//! answers, and nothing comes out before it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domicile_campaign::Campaign;
use serde_json::{json, Value};

fn domicile() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_domicile"));
    command.env_remove("DOMICILE_HOME").stdin(Stdio::null());
    command
}

fn ok(args: &[&str]) -> Value {
    let out = domicile().args(args).output().unwrap();
    assert!(out.status.success(), "domicile {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// A running aggregator, stopped when dropped.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = domicile().args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url =
        first.trim().strip_prefix("domicile aggregator: serving ").unwrap_or_else(|| panic!("{first:?}")).to_owned();
    Running { child, url }
}

fn post(url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.post(url);
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send_json(body).unwrap();
    (response.status().as_u16(), response.body_mut().read_json().unwrap_or(Value::Null))
}

#[test]
fn two_aggregators_release_the_exact_histogram_after_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    ok(&["keygen", "--out", &path("organiser")]);
    let leader_key = ok(&["--json", "aggregator", "keygen", "--out", &path("leader")]);
    let helper_key = ok(&["--json", "aggregator", "keygen", "--out", &path("helper")]);
    std::fs::write(path("verify"), "0f".repeat(32)).unwrap();
    std::fs::write(path("peer-token"), "a-token-the-two-organisations-share").unwrap();

    let now = domicile_aggregator::now_ms();
    let deadline_ms = now + 8_000;
    let campaign = json!({
        "id": "fr.larochelle.mobility-2026",
        "organiser": "La Rochelle",
        "purpose": "The mobility plan: how far people cycle",
        "question": { "app": "io.domicile.sample.mobility-footprint", "computes": "km by bike last week", "unit": "km" },
        "aggregation": { "type": "histogram", "bounds": [10.0, 20.0, 50.0] },
        "aggregators": [
            { "name": "city", "url": "http://127.0.0.1:1", "hpke_public_key": leader_key["public_key"] },
            { "name": "observatory", "url": "http://127.0.0.1:2", "hpke_public_key": helper_key["public_key"] },
        ],
        "minimum_batch": 20,
        "deadline_ms": deadline_ms,
        "published_to": "every participant",
    });
    std::fs::write(path("campaign.json"), serde_json::to_vec_pretty(&campaign).unwrap()).unwrap();
    ok(&["campaign", "sign", &path("campaign.json"), "--key", &path("organiser.key")]);
    let serve = |role: &str, secret: &str, store: &str, more: &[&str]| {
        let owned = [
            "aggregator".to_owned(),
            "serve".to_owned(),
            "--role".to_owned(),
            role.to_owned(),
            "--campaign".to_owned(),
            path("campaign.json"),
            "--organiser".to_owned(),
            path("organiser.pub"),
            "--secret".to_owned(),
            path(secret),
            "--verify-key".to_owned(),
            path("verify"),
            "--peer-token".to_owned(),
            path("peer-token"),
            "--store".to_owned(),
            path(store),
        ];
        let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();
        args.extend(more);
        start(&args)
    };
    let helper = serve("helper", "helper.hpke", "helper-store", &[]);
    let leader = serve("leader", "leader.hpke", "leader-store", &["--helper", &helper.url.clone()]);

    // The helper answers the leader alone.
    let campaign: Campaign = serde_json::from_slice(&std::fs::read(path("campaign.json")).unwrap()).unwrap();
    let report = campaign.report(&json!(3.0), now).unwrap();
    let (status, _) = post(&format!("{}/helper/prepare", helper.url), &json!(report), None);
    assert_eq!(status, 401, "a stranger asks the helper");

    let answers: Vec<f64> = (0..30).map(|i| f64::from(i * 3)).collect();
    let mut expected = vec![0u64; 4];
    for km in &answers {
        expected[[10.0, 20.0, 50.0].iter().filter(|b| **b <= *km).count()] += 1;
        let report = campaign.report(&json!(km), domicile_aggregator::now_ms()).unwrap();
        let (status, answer) = post(&format!("{}/reports", leader.url), &json!(report), None);
        assert_eq!(status, 202, "{answer}");
        if *km == 0.0 {
            let (again, answer) = post(&format!("{}/reports", leader.url), &json!(report), None);
            assert_eq!(again, 409, "the same report twice: {answer}");
        }
    }
    let (status, answer) = post(&format!("{}/collect", leader.url), &json!({}), None);
    assert_eq!(status, 409, "nothing before the deadline: {answer}");

    while domicile_aggregator::now_ms() <= deadline_ms {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, result) = post(&format!("{}/collect", leader.url), &json!({}), None);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["reports"], 30, "{result}");
    assert_eq!(result["aggregate"], json!(expected), "{result}");
    let started = Instant::now();
    let status = loop {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let status: Value =
            agent.get(&format!("{}/status", leader.url)).call().unwrap().body_mut().read_json().unwrap();
        if status["counts"]["pending"] == 0 || started.elapsed() > Duration::from_secs(30) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["counts"]["verified"], 30, "{status}");
    assert_eq!(status["counts"]["refused"]["duplicate"], 1, "{status}");
    // After the deadline, a report is refused.
    let late = campaign.report(&json!(1.0), deadline_ms);
    assert!(late.is_ok());
    let (status, _) = post(&format!("{}/reports", leader.url), &json!(late.unwrap()), None);
    assert_eq!(status, 409, "late");
}
