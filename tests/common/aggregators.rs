//! Two aggregators of a campaign as their organisations run them, for the
//! tests: keys, the signed campaign, `domicile aggregator serve` processes
//! on loopback, and HTTP to them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domicile_campaign::Campaign;
use serde_json::{json, Value};

pub fn domicile() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_domicile"));
    command.env_remove("DOMICILE_HOME").stdin(Stdio::null());
    command
}

pub fn ok(args: &[&str]) -> Value {
    let out = domicile().args(args).output().unwrap();
    assert!(out.status.success(), "domicile {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// A running aggregator, stopped when dropped.
pub use domicile_bench::campaign::AggregatorProcess as Running;

/// The two organisations of a campaign, in `dir`: the organiser's key, each
/// aggregator's HPKE key, the verification key and token they share.
pub struct Organisations {
    dir: PathBuf,
    pub leader: Value,
    pub helper: Value,
}

impl Organisations {
    pub fn new(dir: &Path) -> Organisations {
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        ok(&["keygen", "--out", &path("organiser")]);
        let leader_key = ok(&["--json", "aggregator", "keygen", "--out", &path("leader")]);
        let helper_key = ok(&["--json", "aggregator", "keygen", "--out", &path("helper")]);
        std::fs::write(path("verify"), "0f".repeat(32)).unwrap();
        std::fs::write(path("peer-token"), "a-token-the-two-organisations-share").unwrap();
        Organisations { dir: dir.to_owned(), leader: leader_key, helper: helper_key }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// Writes `campaign` and signs it as its organiser; returns it as signed.
    pub fn sign(&self, campaign: &Value) -> Campaign {
        std::fs::write(self.path("campaign.json"), serde_json::to_vec_pretty(campaign).unwrap()).unwrap();
        ok(&["campaign", "sign", &self.path("campaign.json"), "--key", &self.path("organiser.key")]);
        serde_json::from_slice(&std::fs::read(self.path("campaign.json")).unwrap()).unwrap()
    }

    /// Starts one aggregator of the signed campaign, with `more` arguments.
    pub fn serve(&self, role: &str, more: &[&str]) -> Running {
        domicile_bench::campaign::serve_aggregator(env!("CARGO_BIN_EXE_domicile").as_ref(), &self.dir, role, more)
            .unwrap()
    }
}

impl Organisations {
    /// A campaign's two aggregators as these organisations run them, named
    /// `names`: the leader on loopback at `leader_port`, the helper's URL a
    /// placeholder (it is the leader's business, not the residents').
    pub fn aggregators(&self, names: [&str; 2], leader_port: u16) -> Value {
        json!([
            { "name": names[0], "url": format!("http://127.0.0.1:{leader_port}"), "hpke_public_key": self.leader["public_key"], "result_key": self.leader["result_key"] },
            { "name": names[1], "url": "http://127.0.0.1:2", "hpke_public_key": self.helper["public_key"], "result_key": self.helper["result_key"] },
        ])
    }

    /// Has `home` trust the organiser for campaigns (named after the
    /// campaign) and add the campaign signed last, then starts the helper and the leader (at
    /// `leader_port`, taking the reports `home` attests): (leader, helper).
    pub fn start_for(&self, home: &crate::common::TestHome, leader_port: u16) -> (Running, Running) {
        let signed: Value = serde_json::from_slice(&std::fs::read(self.path("campaign.json")).unwrap()).unwrap();
        let organiser = signed["id"].as_str().unwrap();
        home.ok(&["trust", "add", &self.path("organiser.pub"), "--name", organiser, "--role", "campaign"]);
        home.ok(&["campaign", "add", &self.path("campaign.json")]);
        let attester = home.ok(&["--json", "campaign", "attester"]).json()["attester"].as_str().unwrap().to_owned();
        let helper = self.serve("helper", &[]);
        let leader_addr = format!("127.0.0.1:{leader_port}");
        let leader =
            self.serve("leader", &["--helper", &helper.url.clone(), "--attester", &attester, "--addr", &leader_addr]);
        (leader, helper)
    }
}

pub fn post(url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.post(url);
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send_json(body).unwrap();
    (response.status().as_u16(), response.body_mut().read_json().unwrap_or(Value::Null))
}

pub fn get(url: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().unwrap();
    (response.status().as_u16(), response.body_mut().read_json().unwrap_or(Value::Null))
}

/// The leader's status once nothing is pending (at most 30 s).
pub fn settled(leader: &Running) -> Value {
    let started = Instant::now();
    loop {
        let (_, status) = get(&format!("{}/status", leader.url));
        if status["counts"]["pending"] == 0 || started.elapsed() > Duration::from_secs(30) {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the campaign's deadline to pass, then collects its aggregate.
pub fn collect_after(deadline_ms: u64, leader: &Running) -> Value {
    while domicile_aggregator::now_ms() <= deadline_ms {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, result) = post(&format!("{}/collect", leader.url), &json!({}), None);
    assert_eq!(status, 200, "{result}");
    result
}

/// A free port on loopback, for an aggregator whose URL the campaign must
/// name before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
