//! A home's campaigns, through the real binary and the HTTP API: an
//! organiser signs a campaign with a key from `domicile keygen`; a home
//! adds it only once it trusts that key for campaigns; residents read
//! every term they would consent to; a campaign altered on disk, or whose
//! organiser's key is revoked, is no longer shown as one to join.

mod common;

use common::server::{Client, Server};
use common::*;
use serde_json::json;

#[test]
fn a_signed_campaign_is_added_shown_and_withdrawn_with_its_organiser_s_key() {
    let home = TestHome::new();
    let out = |name: &str| home.path().join(name).to_str().unwrap().to_owned();
    let organiser = home.ok(&["--json", "keygen", "--out", &out("organiser")]).json();
    let file = campaign_file(home.path());
    let file = file.to_str().unwrap();
    let signed = home.ok(&["--json", "campaign", "sign", file, "--key", &out("organiser.key")]).json();
    assert_eq!(signed["key"], organiser["public_key"], "{signed}");

    // Not before the home trusts the organiser's key for campaigns.
    let refused = home.run(&["campaign", "add", file]);
    assert!(
        !refused.ok && refused.stderr.contains("not signed by a key you trust for campaigns"),
        "{}",
        refused.stderr
    );
    home.ok(&["trust", "add", &out("organiser.pub"), "--name", "Nantes Métropole", "--role", "publisher"]);
    assert!(!home.run(&["campaign", "add", file]).ok, "a publisher's key is not a campaign's");
    home.ok(&["trust", "add", &out("organiser.pub"), "--name", "Nantes Métropole", "--role", "campaign"]);
    home.ok(&["campaign", "add", file]);

    let listed = home.ok(&["campaigns"]).stdout;
    assert!(listed.contains("fr.nantes.energy-2026  asked by Nantes Métropole"), "{listed}");
    let shown = home.ok(&["campaign", "show", "fr.nantes.energy-2026"]).stdout;
    for term in [
        "Inside your space, the app io.domicile.sample.energy-insights computes: kWh of January 2026 (kWh)",
        "counted in one of 5 buckets: below 100, 100 to 200, 200 to 400, 400 to 800, 800 and above",
        "two shares of the answer, each encrypted to one aggregator",
        "Nantes Métropole (https://agregation.nantesmetropole.example) and Observatoire indépendant",
        "Nothing is released below 100 participants; no noise is added",
    ] {
        assert!(shown.contains(term), "{term}:\n{shown}");
    }

    // Through the API, for a signed-in resident.
    let password = home.set_password("me");
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    let api = me.get("/api/v1/campaigns").ok().json();
    assert_eq!(api["campaigns"][0]["campaign"]["aggregation"]["bounds"], json!([100.0, 200.0, 400.0, 800.0]), "{api}");
    let shown = me.get("/api/v1/campaigns/fr.nantes.energy-2026").ok().json();
    assert_eq!(shown["campaign"]["minimum_batch"], 100, "{shown}");
    assert!(shown["terms"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().contains("5 buckets")), "{shown}");
    assert_eq!(me.get("/api/v1/campaigns/nope").status, 400);
    drop(server);

    // Its bounds changed on disk: no longer one to join.
    let kept = home.path().join("campaigns/fr.nantes.energy-2026.json");
    let original = std::fs::read(&kept).unwrap();
    std::fs::write(&kept, String::from_utf8(original.clone()).unwrap().replace("800.0", "8000.0")).unwrap();
    let listed = home.ok(&["campaigns"]).stdout;
    assert!(listed.contains("fr.nantes.energy-2026  not shown: the campaign's signature does not verify"), "{listed}");
    assert!(!home.run(&["campaign", "show", "fr.nantes.energy-2026"]).ok);
    std::fs::write(&kept, original).unwrap();
    assert!(home.ok(&["campaign", "show", "fr.nantes.energy-2026"]).ok);

    // Its organiser's key revoked: the same.
    home.ok(&["trust", "revoke", &out("organiser.pub")]);
    assert!(home.ok(&["campaigns"]).stdout.contains("not shown"));
    assert!(!home.run(&["campaign", "show", "fr.nantes.energy-2026"]).ok);
}

#[test]
fn the_operator_adds_a_campaign_through_the_admin_api() {
    let home = TestHome::new();
    let out = |name: &str| home.path().join(name).to_str().unwrap().to_owned();
    home.ok(&["keygen", "--out", &out("organiser")]);
    let file = campaign_file(home.path());
    home.ok(&["campaign", "sign", file.to_str().unwrap(), "--key", &out("organiser.key")]);
    home.ok(&["trust", "add", &out("organiser.pub"), "--role", "campaign"]);
    let token = home.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let server = Server::start(&home);
    let operator = Client::new(&server.url).with_bearer(&token);
    let campaign = std::fs::read_to_string(&file).unwrap();
    let signature = std::fs::read_to_string(format!("{}.sig", file.display())).unwrap();
    let forged = operator.post(
        "/api/v1/admin/campaigns",
        &json!({ "campaign": campaign.replace("100,", "2,"), "signature": signature }),
    );
    assert_eq!(forged.status, 400, "{}", forged.text());
    let added = operator.post("/api/v1/admin/campaigns", &json!({ "campaign": campaign, "signature": signature }));
    assert_eq!(added.ok().json()["added"], "fr.nantes.energy-2026");
    drop(server);
    assert!(home.ok(&["campaigns"]).stdout.contains("fr.nantes.energy-2026  asked by Nantes Métropole"));
}
