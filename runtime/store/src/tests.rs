use serde_json::json;

use super::*;

fn home() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

fn trip() -> domicile_manifest::Doctype {
    "io.domicile.mobility.trip".parse().unwrap()
}

fn put(space: &ResidentSpace, id: &str, body: serde_json::Value) {
    let change = Change::Put { doctype: trip(), id: id.parse().unwrap(), body };
    space.commit(&[change], &Author::Resident, 1, &[]).unwrap();
}

#[test]
fn residents_are_created_once_and_listed() {
    let (_d, store) = home();
    let alice: ResidentName = "alice".parse().unwrap();
    store.create_resident(&alice).unwrap();
    assert!(matches!(store.create_resident(&alice), Err(StoreError::ResidentExists(_))));
    assert!(matches!(store.resident(&"bob".parse().unwrap()), Err(StoreError::UnknownResident(_))));
    assert_eq!(store.residents().unwrap(), vec![alice]);
    for bad in ["", "Alice", "a/b", "../x", "a b", "1abc"] {
        assert!(bad.parse::<ResidentName>().is_err(), "{bad}");
    }
}

#[test]
fn residents_share_nothing() {
    let (_d, store) = home();
    let alice = store.create_resident(&"alice".parse().unwrap()).unwrap();
    let bob = store.create_resident(&"bob".parse().unwrap()).unwrap();
    put(&alice, "t1", json!({"mode": "bus"}));
    assert!(bob.get(&trip(), &"t1".parse().unwrap()).unwrap().is_none());
    let (page, _) = bob.query_page(&trip(), &Selector::all(), &QueryPosition::default(), 100).unwrap();
    assert!(page.is_empty());
    assert!(bob.doctype_counts().unwrap().is_empty());
}

#[test]
fn commit_is_all_or_nothing() {
    let (_d, store) = home();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    put(&me, "keep", json!({"n": 1}));
    let changes = vec![
        Change::Put { doctype: trip(), id: "new".parse().unwrap(), body: json!({"n": 2}) },
        Change::Delete { doctype: trip(), id: "missing".parse().unwrap() },
    ];
    assert!(matches!(me.commit(&changes, &Author::Resident, 2, &[]), Err(StoreError::NotFound(_))));
    assert!(me.get(&trip(), &"new".parse().unwrap()).unwrap().is_none());
    let bad = vec![Change::Put { doctype: trip(), id: "x".parse().unwrap(), body: json!([1, 2]) }];
    assert!(matches!(me.commit(&bad, &Author::Resident, 2, &[]), Err(StoreError::Invalid(_))));
    assert_eq!(me.doctype_counts().unwrap(), vec![(trip().to_string(), 1)]);
}

#[test]
fn provenance_keeps_creator_and_tracks_updater() {
    let (_d, store) = home();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    let app = Author::App { id: "org.example.app".into(), version: "1.0.0".into() };
    let id: DocId = "t".parse().unwrap();
    me.commit(&[Change::Put { doctype: trip(), id: id.clone(), body: json!({"v": 1}) }], &app, 10, &[]).unwrap();
    me.commit(&[Change::Put { doctype: trip(), id: id.clone(), body: json!({"v": 2}) }], &Author::Resident, 20, &[])
        .unwrap();
    let doc = me.get(&trip(), &id).unwrap().unwrap();
    assert_eq!(doc.body, json!({"v": 2}));
    assert_eq!((doc.meta.created_by, doc.meta.created_at_ms), (app, 10));
    assert_eq!((doc.meta.updated_by, doc.meta.updated_at_ms), (Author::Resident, 20));
}

#[test]
fn paged_query_neither_skips_nor_repeats_while_others_write() {
    let (_d, store) = home();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    for i in 0..50 {
        put(&me, &format!("{i:03}"), json!({"i": i, "even": i % 2 == 0}));
    }
    let even = Selector::parse(r#"{"even": true}"#).unwrap();
    let mut seen = Vec::new();
    let mut pos = QueryPosition::default();
    loop {
        let (page, next) = me.query_page(&trip(), &even, &pos, 7).unwrap();
        // A write behind the cursor must not shift what comes next.
        put(&me, "000", json!({"i": 0, "even": true, "touched": true}));
        if page.is_empty() && next == pos {
            break;
        }
        seen.extend(page.into_iter().map(|d| d.body["i"].as_i64().unwrap()));
        pos = next;
    }
    assert_eq!(seen, (0..50).filter(|i| i % 2 == 0).collect::<Vec<_>>());
}

#[test]
fn selector_operators_on_nested_fields() {
    let doc = json!({"start": {"date": "2026-03-04"}, "km": 12.5, "mode": "bus"});
    let yes = |s: &str| Selector::parse(s).unwrap().matches(&doc);
    assert!(yes(r#"{}"#));
    assert!(yes(r#"{"start.date": {"$gte": "2026-03-01", "$lt": "2026-04-01"}}"#));
    assert!(!yes(r#"{"start.date": {"$gt": "2026-03-04"}}"#));
    assert!(yes(r#"{"km": {"$gt": 12, "$lte": 12.5}}"#));
    assert!(yes(r#"{"mode": {"$in": ["bus", "tram"]}}"#));
    assert!(yes(r#"{"missing": {"$exists": false}, "mode": {"$exists": true}}"#));
    assert!(!yes(r#"{"km": {"$gt": "a"}}"#), "mixed types never compare");
    assert!(Selector::parse(r#"{"km": {"$regex": "x"}}"#).is_err());
    assert!(Selector::parse(r#"[1]"#).is_err());
    assert!(Selector::parse(r#"{"a..b": 1}"#).is_err());
}

#[test]
fn apps_grants_and_audit_round_trip() {
    let (_d, store) = home();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    let manifest = domicile_manifest::Manifest::parse(
        "manifest-version = 1\nid = \"org.example.app\"\nname = \"App\"\nversion = \"1.0.0\"\nworld = \"service\"\ndescription = \"Does things\"\n[[permissions]]\ndoctype = \"io.domicile.mobility.trip\"\naccess = [\"read\"]\npurpose = \"Read your trips to sum them\"\n",
    )
    .unwrap();
    let app = InstalledApp {
        grants: domicile_manifest::Grants::all(&manifest),
        manifest,
        publisher: "ab".into(),
        component_digest: "cd".into(),
        installed_at_ms: 5,
    };
    me.put_app(&app, b"pkg").unwrap();
    assert_eq!(me.app(app.id()).unwrap(), app);
    assert_eq!(me.package(app.id()).unwrap(), b"pkg");
    me.set_grants(app.id(), &Default::default()).unwrap();
    assert!(me.grants(app.id()).unwrap().is_empty());

    let entry = AuditEntry {
        seq: 0,
        at_ms: 7,
        app: app.id().clone(),
        app_version: "1.0.0".into(),
        operation: Operation::Query,
        doctype: trip().to_string(),
        documents: 3,
        outcome: Outcome::Allowed,
    };
    me.record_audit(&[entry.clone(), AuditEntry { outcome: Outcome::Denied, ..entry.clone() }]).unwrap();
    let log = me.audit(&AuditFilter::default()).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].seq < log[1].seq);
    assert_eq!(log[1].outcome, Outcome::Denied);
    let other: domicile_manifest::AppId = "org.example.other".parse().unwrap();
    assert!(me.audit(&AuditFilter { app: Some(other), doctype: None }).unwrap().is_empty());

    me.remove_app(app.id()).unwrap();
    assert!(matches!(me.app(app.id()), Err(StoreError::UnknownApp(_))));
    assert!(me.package(app.id()).is_err());
}
