use std::sync::Arc;

use serde_json::{json, Value};

use super::*;

fn home() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), Arc::new(Vocabulary::builtin())).unwrap();
    (dir, store)
}

fn me(store: &Store) -> ResidentSpace {
    store.create_resident(&"me".parse().unwrap()).unwrap()
}

fn trip_type() -> domicile_manifest::Doctype {
    "io.domicile.mobility.trip".parse().unwrap()
}

fn note_type() -> domicile_manifest::Doctype {
    "org.example.note".parse().unwrap()
}

fn trip(day: u32, mode: &str, km: f64) -> Value {
    json!({
        "start": format!("2026-03-{day:02}T08:00:00Z"),
        "end": format!("2026-03-{day:02}T09:00:00Z"),
        "date": format!("2026-03-{day:02}"),
        "month": "2026-03",
        "distance_m": km * 1000.0,
        "duration_s": 3600,
        "mode": mode,
    })
}

fn put(space: &ResidentSpace, doctype: &domicile_manifest::Doctype, id: &str, body: Value) -> Result<()> {
    let change = Change::Put { doctype: doctype.clone(), id: id.parse().unwrap(), body };
    space.commit(&[change], &Author::Resident, 1, &[])
}

/// For archives without apps: any package is refused.
struct NoApps;

impl PackageVetting for NoApps {
    fn vet(&self, _: &domicile_manifest::AppId, _: &[u8]) -> std::result::Result<VettedApp, AppRefusal> {
        Err(AppRefusal::Altered("no package was expected".into()))
    }
}

fn ids(docs: &[Document]) -> Vec<String> {
    docs.iter().map(|d| d.id.to_string()).collect()
}

#[test]
fn the_builtin_vocabulary_is_valid() {
    let v = Vocabulary::builtin();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../manifests/doctypes")).unwrap().count();
    assert_eq!(v.iter().count(), shipped, "every schema of manifests/doctypes is built in");
    assert_eq!(v.indexes(&trip_type()), &[FieldPath::parse("date").unwrap(), FieldPath::parse("mode").unwrap()]);
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
    put(&alice, &trip_type(), "t1", trip(1, "bus", 3.0)).unwrap();
    assert!(bob.get(&trip_type(), &"t1".parse().unwrap()).unwrap().is_none());
    assert!(bob.query_all(Query::all(trip_type())).unwrap().is_empty());
    let by_date = Query { selector: Selector::parse(r#"{"date": "2026-03-01"}"#).unwrap(), ..Query::all(trip_type()) };
    assert!(bob.query_all(by_date).unwrap().is_empty(), "indexes are per resident too");
    assert!(bob.doctype_counts().unwrap().is_empty());
    assert!(bob.changes_since(&trip_type(), 0, 10).unwrap().is_empty());
    assert_eq!(bob.usage().unwrap(), Usage::default());
}

#[test]
fn writes_violating_the_schema_are_refused_naming_the_field_and_not_the_value() {
    let (_d, store) = home();
    let me = me(&store);
    let mut bad = trip(1, "bus", 3.0);
    bad["distance_m"] = json!("my secret value");
    let err = put(&me, &trip_type(), "t", bad).unwrap_err().to_string();
    assert!(err.contains("io.domicile.mobility.trip") && err.contains("/distance_m"), "{err}");
    assert!(!err.contains("my secret value"), "the value must not leak into messages: {err}");
    let mut missing = trip(1, "bus", 3.0);
    missing.as_object_mut().unwrap().remove("mode");
    assert!(put(&me, &trip_type(), "t", missing).unwrap_err().to_string().contains("mode"));
    assert!(put(&me, &trip_type(), "t", trip(1, "teleport", 3.0)).is_err());
    assert!(me.doctype_counts().unwrap().is_empty(), "nothing was written");
    // A doctype without a schema takes any object.
    put(&me, &note_type(), "n", json!({"anything": [1, {"x": null}]})).unwrap();
}

#[test]
fn natural_keys_make_the_same_record_one_document() {
    let (_d, store) = home();
    let me = me(&store);
    let t = trip(3, "bike", 6.0);
    let id = me.id_for(&trip_type(), &t).unwrap();
    assert_eq!(id.as_str(), "2026-03-03T08:00:00Z");
    assert_eq!(me.id_for(&trip_type(), &t).unwrap(), id);
    // Without a natural key: a fresh id each time.
    assert_ne!(me.id_for(&note_type(), &json!({})).unwrap(), me.id_for(&note_type(), &json!({})).unwrap());
}

#[test]
fn commit_is_all_or_nothing() {
    let (_d, store) = home();
    let me = me(&store);
    put(&me, &note_type(), "keep", json!({"n": 1})).unwrap();
    let changes = vec![
        Change::Put { doctype: note_type(), id: "new".parse().unwrap(), body: json!({"n": 2}) },
        Change::Delete { doctype: note_type(), id: "missing".parse().unwrap() },
    ];
    assert!(matches!(me.commit(&changes, &Author::Resident, 2, &[]), Err(StoreError::NotFound(_))));
    assert!(me.get(&note_type(), &"new".parse().unwrap()).unwrap().is_none());
    let bad = vec![Change::Put { doctype: note_type(), id: "x".parse().unwrap(), body: json!([1, 2]) }];
    assert!(matches!(me.commit(&bad, &Author::Resident, 2, &[]), Err(StoreError::Invalid(_))));
    assert_eq!(me.doctype_counts().unwrap(), vec![(note_type().to_string(), 1)]);
    assert!(me.verify().unwrap().is_consistent());
}

#[test]
fn huge_and_deeply_nested_documents_are_refused_cleanly() {
    let (_d, store) = home();
    let me = me(&store);
    let huge = json!({ "text": "x".repeat(MAX_DOC_BYTES) });
    assert!(matches!(put(&me, &note_type(), "big", huge), Err(StoreError::Limit(_))));
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Selector::parse(&format!("{{\"a\": {deep}}}")).is_err(), "the JSON parser's depth limit holds");
    assert!(me.doctype_counts().unwrap().is_empty());
}

#[test]
fn provenance_keeps_creator_and_tracks_updater() {
    let (_d, store) = home();
    let me = me(&store);
    let app = Author::App { id: "org.example.app".into(), version: "1.0.0".into() };
    let id: DocId = "t".parse().unwrap();
    me.commit(&[Change::Put { doctype: note_type(), id: id.clone(), body: json!({"v": 1}) }], &app, 10, &[]).unwrap();
    me.commit(
        &[Change::Put { doctype: note_type(), id: id.clone(), body: json!({"v": 2}) }],
        &Author::Resident,
        20,
        &[],
    )
    .unwrap();
    let doc = me.get(&note_type(), &id).unwrap().unwrap();
    assert_eq!(doc.body, json!({"v": 2}));
    assert_eq!((doc.meta.created_by, doc.meta.created_at_ms), (app, 10));
    assert_eq!((doc.meta.updated_by, doc.meta.updated_at_ms), (Author::Resident, 20));
}

#[test]
fn paged_queries_neither_skip_nor_repeat_while_others_write() {
    let (_d, store) = home();
    let me = me(&store);
    for i in 0..50 {
        put(&me, &note_type(), &format!("{i:03}"), json!({"i": i, "even": i % 2 == 0})).unwrap();
    }
    let q = Query { selector: Selector::parse(r#"{"even": true}"#).unwrap(), ..Query::all(note_type()) };
    let mut cursor = me.query(q).unwrap();
    let mut seen = Vec::new();
    loop {
        let page = me.next_page(&mut cursor, 7).unwrap();
        // Writes behind and ahead of the cursor.
        put(&me, &note_type(), "000", json!({"i": 0, "even": true, "touched": true})).unwrap();
        put(&me, &note_type(), "001", json!({"i": 1, "even": false})).unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(page.into_iter().map(|d| d.body["i"].as_i64().unwrap()));
    }
    assert_eq!(seen, (0..50).filter(|i| i % 2 == 0).collect::<Vec<_>>());
}

#[test]
fn range_queries_on_an_indexed_field_read_the_index() {
    let (_d, store) = home();
    let me = me(&store);
    for day in 1..=28 {
        put(&me, &trip_type(), &format!("t{day:02}"), trip(day, if day % 3 == 0 { "bus" } else { "bike" }, day as f64))
            .unwrap();
    }
    let q = |selector: &str| Query { selector: Selector::parse(selector).unwrap(), ..Query::all(trip_type()) };
    let week = q(r#"{"date": {"$gte": "2026-03-09", "$lt": "2026-03-16"}}"#);
    let cursor = me.query(week.clone()).unwrap();
    assert!(cursor.uses_index());
    assert_eq!(ids(&me.query_all(week).unwrap()), ["t09", "t10", "t11", "t12", "t13", "t14", "t15"]);
    // Combined with a clause on another field, and with equality.
    let buses = me.query_all(q(r#"{"date": {"$gt": "2026-03-20"}, "mode": "bus"}"#)).unwrap();
    assert_eq!(ids(&buses), ["t21", "t24", "t27"]);
    assert_eq!(ids(&me.query_all(q(r#"{"date": "2026-03-05"}"#)).unwrap()), ["t05"]);
    // A field without an index: a scan, same answer.
    let far = q(r#"{"distance_m": {"$gte": 26000}}"#);
    assert!(!me.query(far.clone()).unwrap().uses_index());
    assert_eq!(ids(&me.query_all(far).unwrap()), ["t26", "t27", "t28"]);
}

#[test]
fn sort_and_limit_with_and_without_an_index() {
    let (_d, store) = home();
    let me = me(&store);
    for (id, day, km) in [("a", 5, 3.0), ("b", 2, 9.0), ("c", 9, 1.0), ("d", 7, 5.0)] {
        put(&me, &trip_type(), id, trip(day, "bike", km)).unwrap();
    }
    put(&me, &note_type(), "x", json!({})).unwrap();
    let sorted = |field: &str, descending: bool, limit: Option<u64>| {
        let sort = Some(Sort { field: FieldPath::parse(field).unwrap(), descending });
        ids(&me.query_all(Query { sort, limit, ..Query::all(trip_type()) }).unwrap())
    };
    assert_eq!(sorted("date", false, None), ["b", "a", "d", "c"], "indexed, ascending");
    assert_eq!(sorted("date", true, None), ["c", "d", "a", "b"], "indexed, descending");
    assert_eq!(sorted("distance_m", false, None), ["c", "a", "d", "b"], "not indexed");
    assert_eq!(sorted("distance_m", true, Some(2)), ["b", "d"]);
    assert_eq!(sorted("date", true, Some(3)), ["c", "d", "a"]);
    // Descending pages through an index continue where they stopped.
    let sort = Some(Sort { field: FieldPath::parse("date").unwrap(), descending: true });
    let mut cursor = me.query(Query { sort, ..Query::all(trip_type()) }).unwrap();
    let mut pages = Vec::new();
    loop {
        let page = me.next_page(&mut cursor, 1).unwrap();
        if page.is_empty() {
            break;
        }
        pages.extend(ids(&page));
    }
    assert_eq!(pages, ["c", "d", "a", "b"]);
}

#[test]
fn updates_and_deletes_leave_no_stale_index_entries() {
    let (_d, store) = home();
    let me = me(&store);
    put(&me, &trip_type(), "t", trip(1, "bus", 2.0)).unwrap();
    put(&me, &trip_type(), "t", trip(2, "car", 2.0)).unwrap();
    let q = |s: &str| me.query_all(Query { selector: Selector::parse(s).unwrap(), ..Query::all(trip_type()) }).unwrap();
    assert!(q(r#"{"date": "2026-03-01"}"#).is_empty(), "the old value is no longer indexed");
    assert_eq!(q(r#"{"mode": "car"}"#).len(), 1);
    let report = me.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.index_entries, 2);
    me.commit(&[Change::Delete { doctype: trip_type(), id: "t".parse().unwrap() }], &Author::Resident, 3, &[]).unwrap();
    let report = me.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!((report.documents, report.index_entries), (0, 0));
    assert_eq!(me.usage().unwrap(), Usage::default());
}

#[test]
fn purge_removes_what_an_app_created_and_nothing_else() {
    let (_d, store) = home();
    let me = me(&store);
    let app = Author::App { id: "org.example.importer".into(), version: "1.0.0".into() };
    for day in 1..=5 {
        let change =
            Change::Put { doctype: trip_type(), id: format!("t{day}").parse().unwrap(), body: trip(day, "bus", 1.0) };
        me.commit(&[change], &app, 1, &[]).unwrap();
    }
    put(&me, &trip_type(), "mine", trip(9, "walk", 1.0)).unwrap();
    let purged = me.purge_created_by(&"org.example.importer".parse().unwrap(), 2).unwrap();
    assert_eq!(purged, 5);
    assert_eq!(ids(&me.query_all(Query::all(trip_type())).unwrap()), ["mine"]);
    let report = me.verify().unwrap();
    assert!(report.is_consistent() && report.index_entries == 2, "{report:?}");
}

#[test]
fn the_change_feed_lists_changes_per_doctype_in_order() {
    let (_d, store) = home();
    let me = me(&store);
    put(&me, &trip_type(), "a", trip(1, "bus", 1.0)).unwrap();
    put(&me, &note_type(), "n", json!({})).unwrap();
    put(&me, &trip_type(), "a", trip(1, "car", 1.0)).unwrap();
    me.commit(&[Change::Delete { doctype: trip_type(), id: "a".parse().unwrap() }], &Author::Resident, 5, &[]).unwrap();
    let feed = me.changes_since(&trip_type(), 0, 100).unwrap();
    let ops: Vec<ChangeOp> = feed.iter().map(|c| c.op).collect();
    assert_eq!(ops, [ChangeOp::Put, ChangeOp::Put, ChangeOp::Delete]);
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    let later = me.changes_since(&trip_type(), feed[0].seq, 100).unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(me.changes_since(&note_type(), 0, 100).unwrap().len(), 1);
}

#[test]
fn quotas_refuse_growth_with_a_limit_error_and_allow_deletes() {
    let (_d, store) = home();
    let me = me(&store);
    me.set_quota(&Quota { max_documents: Some(2), max_bytes: None }).unwrap();
    put(&me, &note_type(), "a", json!({})).unwrap();
    put(&me, &note_type(), "b", json!({})).unwrap();
    let err = put(&me, &note_type(), "c", json!({})).unwrap_err();
    assert!(matches!(err, StoreError::Limit(ref m) if m.contains("quota")), "{err}");
    put(&me, &note_type(), "a", json!({"replaced": true})).unwrap();
    me.set_quota(&Quota { max_documents: Some(1), max_bytes: Some(10) }).unwrap();
    me.commit(&[Change::Delete { doctype: note_type(), id: "b".parse().unwrap() }], &Author::Resident, 2, &[]).unwrap();
    assert!(matches!(
        put(&me, &note_type(), "a", json!({"now": "too large for ten bytes"})),
        Err(StoreError::Limit(_))
    ));
    assert_eq!(me.usage().unwrap().documents, 1);
    assert!(me.verify().unwrap().is_consistent());
}

fn filled_space(store: &Store) -> ResidentSpace {
    let me = me(store);
    let app = Author::App { id: "org.example.app".into(), version: "1.0.0".into() };
    for day in 1..=6 {
        let change =
            Change::Put { doctype: trip_type(), id: format!("t{day}").parse().unwrap(), body: trip(day, "bus", 2.0) };
        let entry = AuditEntry {
            seq: 0,
            at_ms: 7,
            app: "org.example.app".parse().unwrap(),
            app_version: "1.0.0".into(),
            operation: Operation::Put,
            doctype: trip_type().to_string(),
            documents: 1,
            outcome: Outcome::Allowed,
            destination: None,
            hash: String::new(),
        };
        me.commit(&[change], &app, day as u64, &[entry]).unwrap();
    }
    put(&me, &note_type(), "n", json!({"text": "ünïcode \u{0} and NUL"})).unwrap();
    me.append_app_log(&[AppLogEntry {
        at_ms: 3,
        app: "org.example.app".parse().unwrap(),
        level: "info".into(),
        message: "hi".into(),
    }])
    .unwrap();
    me.set_quota(&Quota { max_documents: Some(1000), max_bytes: None }).unwrap();
    me
}

fn egress_request(space: &ResidentSpace, payload: &str) -> u64 {
    let item = OutboxItem {
        id: 0,
        at_ms: 8,
        app: "org.example.app".parse().unwrap(),
        app_version: "1.0.0".into(),
        destination: "https://survey.example.org/mobility".into(),
        purpose: "The city's mobility survey".into(),
        payload: payload.into(),
        status: OutboxStatus::Pending,
        campaign: None,
    };
    space.queue_egress(&item, &item.audit_entry(Operation::Egress, 8, Outcome::Allowed)).unwrap()
}

#[test]
fn outbox_items_keep_their_payload_and_status_through_export() {
    let (_d, a) = home();
    let space = filled_space(&a);
    let first = egress_request(&space, r#"{"trips_per_mode":{"bike":3}}"#);
    let second = egress_request(&space, "{}");
    assert!(second > first);
    space.set_outbox_status(second, OutboxStatus::Denied { at_ms: 9 }, None).unwrap();
    space
        .notify(&[Notification {
            seq: 0,
            at_ms: 9,
            app: "org.example.app".parse().unwrap(),
            title: "Done".into(),
            body: "Your report is ready".into(),
        }])
        .unwrap();
    let items = space.outbox().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].payload, r#"{"trips_per_mode":{"bike":3}}"#);
    assert_eq!(items[0].status, OutboxStatus::Pending);
    assert_eq!(items[1].status, OutboxStatus::Denied { at_ms: 9 });
    assert!(space.outbox_item(12345).is_err());
    assert!(space.verify_audit().unwrap().is_intact(), "egress is audited in the chain");

    let mut archive = Vec::new();
    let summary = space.export(&mut archive, 10).unwrap();
    assert_eq!((summary.outbox, summary.notifications), (2, 1));
    let (_d2, b) = home();
    let (restored, _) = b.restore(archive.as_slice(), None, &NoApps).unwrap();
    assert_eq!(restored.outbox().unwrap(), items);
    assert_eq!(restored.notifications().unwrap(), space.notifications().unwrap());
    let mut again = Vec::new();
    restored.export(&mut again, 10).unwrap();
    assert_eq!(archive, again);
}

#[test]
fn export_then_restore_rebuilds_an_identical_space() {
    let (_d, a) = home();
    let original = filled_space(&a);
    let mut first = Vec::new();
    let summary = original.export(&mut first, 1_000_000).unwrap();
    assert_eq!((summary.documents, summary.audit_entries, summary.changes), (7, 6, 7));

    let (_d2, b) = home();
    let (restored, restored_summary) = b.restore(first.as_slice(), None, &NoApps).unwrap();
    assert_eq!(restored_summary.summary, summary);
    assert_eq!(restored.resident().as_str(), "me");
    let mut second = Vec::new();
    restored.export(&mut second, 1_000_000).unwrap();
    assert!(first == second, "the restored space exports to the same bytes");
    assert!(restored.verify().unwrap().is_consistent());
    // The restored space keeps working, and its sequence continues.
    put(&restored, &trip_type(), "t9", trip(9, "car", 1.0)).unwrap();
    let feed = restored.changes_since(&trip_type(), 0, 100).unwrap();
    assert!(feed.last().unwrap().seq > feed[feed.len() - 2].seq);
    // Restoring over an existing resident is refused; under another name it works.
    assert!(matches!(b.restore(first.as_slice(), None, &NoApps), Err(StoreError::ResidentExists(_))));
    let (copy, _) = b.restore(first.as_slice(), Some(&"copy".parse().unwrap()), &NoApps).unwrap();
    assert_eq!(copy.doctype_counts().unwrap(), original.doctype_counts().unwrap());
}

#[test]
fn a_damaged_export_restores_nothing() {
    let (_d, a) = home();
    let mut archive = Vec::new();
    filled_space(&a).export(&mut archive, 5).unwrap();
    let (_d2, b) = home();
    // Corrupt one document line but keep the tar valid.
    let text_at = archive.windows(5).position(|w| w == b"\"bus\"").unwrap();
    let mut damaged = archive.clone();
    damaged[text_at] = b'{';
    assert!(b.restore(damaged.as_slice(), None, &NoApps).is_err());
    assert!(b.residents().unwrap().is_empty(), "the half-restored resident was removed");
    assert!(b.restore(&b"not a tar file at all"[..], None, &NoApps).is_err());
    assert!(b.residents().unwrap().is_empty());
    // And the intact archive still restores.
    b.restore(archive.as_slice(), None, &NoApps).unwrap();
}

#[test]
fn apps_grants_and_audit_round_trip() {
    let (_d, store) = home();
    let me = me(&store);
    let manifest = domicile_manifest::Manifest::parse(
        "manifest-version = 1\nid = \"org.example.app\"\nname = \"App\"\nversion = \"1.0.0\"\nworld = \"service\"\ndescription = \"Does things\"\n[[permissions]]\ndoctype = \"io.domicile.mobility.trip\"\naccess = [\"read\"]\npurpose = \"Read your trips to sum them\"\n",
    )
    .unwrap();
    let app = installed(manifest);
    me.put_app(&app, b"pkg").unwrap();
    assert_eq!(me.app(app.id()).unwrap(), app);
    assert_eq!(me.package(app.id()).unwrap(), b"pkg");
    let shared = me.app_now(app.id()).unwrap();
    assert!(Arc::ptr_eq(&shared, &me.app_now(app.id()).unwrap()), "an unchanged record is decoded once");
    me.set_grants(app.id(), &Default::default()).unwrap();
    assert!(me.grants(app.id()).unwrap().is_empty(), "a changed record is read again");
    assert!(me.app_now(app.id()).unwrap().grants.is_empty());
    assert!(!shared.grants.is_empty(), "what a caller holds does not change under it");
    // Another resident with an app of the same id has their own record.
    let you = store.create_resident(&"you".parse().unwrap()).unwrap();
    you.put_app(&app, b"pkg").unwrap();
    assert!(!you.app_now(app.id()).unwrap().grants.is_empty());
    assert!(me.app_now(app.id()).unwrap().grants.is_empty());
    let entry = AuditEntry {
        seq: 0,
        at_ms: 7,
        app: app.id().clone(),
        app_version: "1.0.0".into(),
        operation: Operation::Query,
        doctype: trip_type().to_string(),
        documents: 3,
        outcome: Outcome::Allowed,
        destination: None,
        hash: String::new(),
    };
    me.record_audit(&[entry.clone(), AuditEntry { outcome: Outcome::Denied, ..entry.clone() }]).unwrap();
    let log = me.audit(&AuditFilter::default()).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].seq < log[1].seq);
    assert_eq!(log[1].outcome, Outcome::Denied);
    let other: domicile_manifest::AppId = "org.example.other".parse().unwrap();
    assert!(me.audit(&AuditFilter { app: Some(other), ..Default::default() }).unwrap().is_empty());
    me.remove_app(app.id()).unwrap();
    assert!(matches!(me.app(app.id()), Err(StoreError::UnknownApp(_))));
    assert!(matches!(me.app_now(app.id()), Err(StoreError::UnknownApp(_))), "not served from the cache");
    assert!(me.package(app.id()).is_err());
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

/// Rewrites the stored audit entry at `seq` with `edit` applied, bypassing
/// the store's API as an attacker with access to the files would.
fn tamper_audit(space: &ResidentSpace, seq: u64, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = space.audit.get(seq.to_be_bytes()).unwrap().expect("entry exists");
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    edit(&mut value);
    space.audit.insert(seq.to_be_bytes(), serde_json::to_vec(&value).unwrap()).unwrap();
}

#[test]
fn the_audit_chain_detects_edits_deletions_and_reordering() {
    let (_dir, store) = home();
    let space = filled_space(&store);
    let intact = space.verify_audit().unwrap();
    assert!(intact.is_intact(), "{:?}", intact.problems);
    assert_eq!(intact.entries, 6);
    assert_eq!(intact.head.len(), 64);

    // Edited: a write becomes a smaller one.
    tamper_audit(&space, 3, |v| v["documents"] = json!(0));
    let check = space.verify_audit().unwrap();
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    assert!(check.problems[0].contains("entry 3 does not match its hash"), "{:?}", check.problems);
    tamper_audit(&space, 3, |v| v["documents"] = json!(1));
    assert!(space.verify_audit().unwrap().is_intact(), "restoring the value restores the chain");

    // Deleted in the middle, then at the end.
    let second = space.audit.remove(2u64.to_be_bytes()).unwrap().unwrap();
    let problems = space.verify_audit().unwrap().problems;
    assert!(problems.iter().any(|p| p.contains("entry 3 follows entry 1")), "{problems:?}");
    space.audit.insert(2u64.to_be_bytes(), second).unwrap();
    let last = space.audit.remove(6u64.to_be_bytes()).unwrap().unwrap();
    let problems = space.verify_audit().unwrap().problems;
    assert!(problems.iter().any(|p| p.contains("ends at entry 5")), "{problems:?}");
    space.audit.insert(6u64.to_be_bytes(), last).unwrap();

    // Two entries swapped (keys kept in order, contents exchanged).
    let (a, b) =
        (space.audit.get(4u64.to_be_bytes()).unwrap().unwrap(), space.audit.get(5u64.to_be_bytes()).unwrap().unwrap());
    space.audit.insert(4u64.to_be_bytes(), b.clone()).unwrap();
    space.audit.insert(5u64.to_be_bytes(), a.clone()).unwrap();
    assert!(!space.verify_audit().unwrap().is_intact());
    space.audit.insert(4u64.to_be_bytes(), a).unwrap();
    space.audit.insert(5u64.to_be_bytes(), b).unwrap();
    assert!(space.verify_audit().unwrap().is_intact());

    // An export of a tampered log does not restore.
    tamper_audit(&space, 1, |v| v["outcome"] = json!("denied"));
    let mut archive = Vec::new();
    space.export(&mut archive, 9).unwrap();
    let (_other, elsewhere) = home();
    let err = elsewhere.restore(archive.as_slice(), None, &NoApps).err().expect("refused");
    assert!(err.to_string().contains("audit log was altered"), "{err}");
}

#[test]
fn audit_summaries_group_and_filter_by_time() {
    let (_dir, store) = home();
    let space = me(&store);
    let entry = |at_ms: u64, documents: u64, outcome: Outcome| AuditEntry {
        seq: 0,
        at_ms,
        app: "org.example.app".parse().unwrap(),
        app_version: "1.0.0".into(),
        operation: Operation::Query,
        doctype: "io.domicile.bank.operation".into(),
        documents,
        outcome,
        destination: None,
        hash: String::new(),
    };
    space
        .record_audit(&[
            entry(10, 1000, Outcome::Allowed),
            entry(20, 204, Outcome::Allowed),
            entry(30, 0, Outcome::Denied),
            entry(99, 5, Outcome::Allowed),
        ])
        .unwrap();
    let summary =
        space.audit_summary(&AuditFilter { since_ms: Some(10), until_ms: Some(99), ..Default::default() }).unwrap();
    assert_eq!(summary.len(), 2);
    assert_eq!((summary[0].calls, summary[0].documents, summary[0].first_ms, summary[0].last_ms), (2, 1204, 10, 20));
    assert_eq!(summary[0].sentence(), "org.example.app read 1,204 io.domicile.bank.operation document(s) in 2 call(s)");
    assert!(summary[1].sentence().contains("DENIED"), "{}", summary[1].sentence());
}

#[test]
fn a_store_in_use_by_another_opener_says_so() {
    let (dir, _store) = home();
    let err = Store::open(&dir.path().join("db"), Arc::new(Vocabulary::builtin())).err().expect("locked");
    assert!(matches!(err, StoreError::InUse(_)), "{err}");
    assert!(err.to_string().contains("in use by another domicile process"), "{err}");
}

/// The entries of an archive, to edit as an attacker would, and back.
fn entries_of(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(archive);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn archive_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap()
}

/// `archive` with `edit` applied to the JSON lines of entry `name`.
fn edit_lines(archive: &[u8], name: &str, edit: impl FnOnce(&mut Vec<Value>)) -> Vec<u8> {
    let mut entries = entries_of(archive);
    let (_, bytes) = entries.iter_mut().find(|(n, _)| n.ends_with(name)).unwrap();
    let mut lines: Vec<Value> =
        bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    edit(&mut lines);
    *bytes = lines.iter().flat_map(|l| [serde_json::to_vec(l).unwrap(), b"\n".to_vec()].concat()).collect();
    archive_of(&entries)
}

/// `archive` with `edit` applied to its manifest.json.
fn edit_manifest(archive: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut entries = entries_of(archive);
    let (_, bytes) = entries.iter_mut().find(|(n, _)| n.ends_with("manifest.json")).unwrap();
    let mut manifest: Value = serde_json::from_slice(bytes).unwrap();
    edit(&mut manifest);
    *bytes = serde_json::to_vec(&manifest).unwrap();
    archive_of(&entries)
}

fn refused(archive: &[u8]) -> String {
    let (_d, store) = home();
    let err = store.restore(archive, None, &NoApps).err().expect("the archive is refused").to_string();
    assert!(store.residents().unwrap().is_empty(), "a refused archive restores nothing: {err}");
    err
}

fn exported(space: &ResidentSpace) -> Vec<u8> {
    let mut archive = Vec::new();
    space.export(&mut archive, 1_000).unwrap();
    archive
}

#[test]
fn a_restored_archive_cannot_smuggle_documents_that_break_their_schema_or_provenance() {
    let (_d, a) = home();
    let archive = exported(&filled_space(&a));
    // A trip whose distance is text, not a number.
    let bad_schema = edit_lines(&archive, "documents.jsonl", |docs| docs[0]["body"]["distance_m"] = json!("far"));
    assert!(refused(&bad_schema).contains("schema"), "{}", refused(&bad_schema));
    // A document that claims to have been written by another app.
    let forged = edit_lines(&archive, "documents.jsonl", |docs| {
        docs[0]["meta"]["updated_by"] = json!({"kind": "app", "id": "org.city.energy", "version": "9.9.9"})
    });
    assert!(refused(&forged).contains("provenance was edited"), "{}", refused(&forged));
    // A document added without its change record, and one removed.
    let added = edit_lines(&archive, "documents.jsonl", |docs| {
        let mut extra = docs[0].clone();
        extra["id"] = json!("t1-planted");
        docs.insert(1, extra);
    });
    let added = edit_manifest(&added, |m| m["counts"]["documents"] = json!(8));
    assert!(refused(&added).contains("documents were added"), "{}", refused(&added));
    let removed = edit_lines(&archive, "documents.jsonl", |docs| {
        docs.remove(1);
    });
    let removed = edit_manifest(&removed, |m| m["counts"]["documents"] = json!(6));
    assert!(refused(&removed).contains("documents were removed"), "{}", refused(&removed));
}

#[test]
fn a_restored_audit_log_must_reach_its_recorded_head() {
    let (_d, a) = home();
    let archive = exported(&filled_space(&a));
    // Shortened, with the count fixed and the head removed.
    let shortened = edit_lines(&archive, "audit.jsonl", |log| {
        log.pop();
    });
    let shortened = edit_manifest(&shortened, |m| {
        m["counts"]["audit_entries"] = json!(5);
        m.as_object_mut().unwrap().remove("audit_head");
    });
    assert!(refused(&shortened).contains("audit_head"), "{}", refused(&shortened));
    // Shortened with the old head kept, or emptied with an empty head.
    let shortened = edit_manifest(
        &edit_lines(&archive, "audit.jsonl", |log| {
            log.pop();
        }),
        |m| m["counts"]["audit_entries"] = json!(5),
    );
    assert!(refused(&shortened).contains("entries were removed"), "{}", refused(&shortened));
    let emptied = edit_manifest(&edit_lines(&archive, "audit.jsonl", Vec::clear), |m| {
        m["counts"]["audit_entries"] = json!(0);
        m["audit_head"] = json!("");
    });
    assert!(refused(&emptied).contains("entries were removed"), "{}", refused(&emptied));
}

#[test]
fn a_restored_sequence_never_goes_below_the_records_it_restores() {
    let (_d, a) = home();
    let original = filled_space(&a);
    let seq_before = original.current_seq().unwrap();
    let lowered = edit_manifest(&exported(&original), |m| m["sequence"] = json!(1));
    let (_d2, b) = home();
    let (restored, _) = b.restore(lowered.as_slice(), None, &NoApps).unwrap();
    assert_eq!(restored.current_seq().unwrap(), seq_before, "recomputed from the feed and the logs");
    let feed = restored.changes_since(&trip_type(), 0, 100).unwrap().len();
    put(&restored, &trip_type(), "t9", trip(9, "car", 1.0)).unwrap();
    put(&restored, &trip_type(), "t10", trip(10, "car", 1.0)).unwrap();
    assert_eq!(restored.changes_since(&trip_type(), 0, 100).unwrap().len(), feed + 2, "no feed record was overwritten");
    // A sequence near the end of the range would overflow later: refused.
    let huge = edit_manifest(&exported(&original), |m| m["sequence"] = json!(u64::MAX));
    assert!(refused(&huge).contains("out of range"), "{}", refused(&huge));
}

#[test]
fn duplicated_unknown_and_oversized_entries_are_refused_before_they_are_read() {
    let (_d, a) = home();
    let archive = exported(&filled_space(&a));
    let mut entries = entries_of(&archive);
    let docs = entries.iter().find(|(n, _)| n.ends_with("documents.jsonl")).unwrap().clone();
    entries.push(docs);
    assert!(refused(&archive_of(&entries)).contains("appears twice"));
    // A duplicated record inside an entry.
    let doubled = edit_lines(&archive, "changes.jsonl", |feed| feed.push(feed[0].clone()));
    let doubled = edit_manifest(&doubled, |m| m["counts"]["changes"] = json!(8));
    assert!(refused(&doubled).contains("repeats or is out of order"), "{}", refused(&doubled));
    // A 2 GiB entry nobody exports: refused from its header, without reading it.
    let mut big = entries_of(&archive);
    big.truncate(1);
    let mut tar = archive_of(&big);
    tar.truncate(tar.len() - 1024); // the end-of-archive blocks
    let mut header = tar::Header::new_ustar();
    header.set_path("domicile-export/padding.bin").unwrap();
    header.set_size(2 << 30);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    let counted = CountingReader { inner: std::io::Read::chain(tar.as_slice(), std::io::repeat(0)), read: 0 };
    let (_d2, b) = home();
    let mut counted = counted;
    let err = b.restore(&mut counted, None, &NoApps).err().expect("refused").to_string();
    assert!(err.contains("domicile-export/padding.bin"), "{err}");
    assert!(counted.read < 1024 * 1024, "read {} bytes of a 2 GiB entry", counted.read);
    // A line longer than any record.
    let long = edit_lines(&archive, "app-log.jsonl", |log| log[0]["message"] = json!("x".repeat(3 << 20)));
    assert!(refused(&long).contains("longer than"), "{}", refused(&long));
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Vets packages that are manifest texts, as a stand-in for signature
/// checks (the real ones, with signed packages, run in the CLI's tests).
struct ManifestPackages {
    revoked: bool,
    trusted: bool,
}

impl PackageVetting for ManifestPackages {
    fn vet(&self, record: &domicile_manifest::AppId, package: &[u8]) -> std::result::Result<VettedApp, AppRefusal> {
        let manifest =
            domicile_manifest::Manifest::from_bytes(package).map_err(|e| AppRefusal::Altered(e.to_string()))?;
        if !self.trusted {
            return Err(AppRefusal::LeftOut(format!("{record} is signed by a key this home does not trust")));
        }
        let hold = self.revoked.then(|| Hold { reason: "its key is revoked".into(), since_ms: 1 });
        Ok(VettedApp { manifest, publisher: "ab".into(), component_digest: "cd".into(), hold })
    }
}

/// An app installed with every grant its manifest asks for.
fn installed(manifest: domicile_manifest::Manifest) -> InstalledApp {
    InstalledApp {
        grants: domicile_manifest::Grants::all(&manifest),
        manifest,
        publisher: "ab".into(),
        component_digest: "cd".into(),
        installed_at_ms: 5,
        held: None,
        triggers_off: Default::default(),
    }
}

const APP_MANIFEST: &str = "manifest-version = 1\nid = \"org.example.app\"\nname = \"App\"\nversion = \"1.0.0\"\nworld = \"service\"\ndescription = \"Does things\"\n[[permissions]]\ndoctype = \"io.domicile.mobility.trip\"\naccess = [\"read\"]\nfields = [\"mode\"]\npurpose = \"Read your trips to sum them\"\n";

fn space_with_app(store: &Store) -> ResidentSpace {
    let space = filled_space(store);
    let manifest = domicile_manifest::Manifest::parse(APP_MANIFEST).unwrap();
    let app = installed(manifest);
    space.put_app(&app, APP_MANIFEST.as_bytes()).unwrap();
    space
}

#[test]
fn a_restored_app_is_what_its_package_proves_and_no_more() {
    let (_d, a) = home();
    let archive = exported(&space_with_app(&a));
    let trusted = ManifestPackages { revoked: false, trusted: true };
    let (_d2, b) = home();
    let (restored, report) = b.restore(archive.as_slice(), None, &trusted).unwrap();
    assert!(report.left_out.is_empty() && report.held.is_empty());
    assert_eq!(restored.apps().unwrap().len(), 1);

    // Widened in the record: more access, more fields, a doctype the app never asked for.
    let widened = edit_lines(&archive, "apps.jsonl", |apps| {
        apps[0]["grants"] = json!({
            "io.domicile.mobility.trip": {"access": ["read", "write"], "fields": ["mode", "start"]},
            "io.domicile.bank.operation": {"access": ["read"]}
        })
    });
    let (_d3, c) = home();
    let (restored, _) = c.restore(widened.as_slice(), None, &trusted).unwrap();
    let app = restored.app(&"org.example.app".parse().unwrap()).unwrap();
    assert_eq!(app.grants.to_string(), "io.domicile.mobility.trip:read:mode", "cut down to the signed manifest");

    // The record's manifest says more than the package: refused as edited.
    let edited = edit_lines(&archive, "apps.jsonl", |apps| {
        apps[0]["manifest"]["permissions"][0]["access"] = json!(["read", "write"])
    });
    let (_d4, d) = home();
    let err = d.restore(edited.as_slice(), None, &trusted).err().expect("refused").to_string();
    assert!(err.contains("not what its signed package says"), "{err}");
    assert!(d.residents().unwrap().is_empty());

    // An untrusted publisher: the resident is restored without the app.
    let (_d5, e) = home();
    let (restored, report) =
        e.restore(archive.as_slice(), None, &ManifestPackages { revoked: false, trusted: false }).unwrap();
    assert!(restored.apps().unwrap().is_empty());
    assert_eq!(report.left_out.len(), 1);
    assert_eq!(
        restored.doctype_counts().unwrap(),
        a.resident(&"me".parse().unwrap()).unwrap().doctype_counts().unwrap()
    );
    // A revoked one: restored on hold.
    let (_d6, f) = home();
    let (restored, report) =
        f.restore(archive.as_slice(), None, &ManifestPackages { revoked: true, trusted: true }).unwrap();
    assert_eq!(report.held.len(), 1);
    assert!(restored.apps().unwrap()[0].held.is_some());
}

#[test]
fn a_restore_interrupted_by_a_crash_is_removed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path, Arc::new(Vocabulary::builtin())).unwrap();
        let half = store.begin_incoming(&"half".parse().unwrap()).unwrap();
        put(&half, &trip_type(), "t1", trip(1, "bus", 1.0)).unwrap();
        me(&store);
        store.flush().unwrap();
        half.flush().unwrap();
        assert!(path.join("incoming/half").is_dir());
    }
    let store = Store::open(&path, Arc::new(Vocabulary::builtin())).unwrap();
    assert_eq!(store.residents().unwrap(), vec!["me".parse::<ResidentName>().unwrap()]);
    assert!(!path.join("incoming/half").exists(), "its files are gone");
}

fn du(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    std::fs::read_dir(path).unwrap().map(|e| du(&e.unwrap().path())).sum()
}

#[test]
fn each_resident_is_a_directory_and_deleting_one_frees_its_disk() {
    let (dir, store) = home();
    let alice = filled_space(&store);
    let bob = store.create_resident(&"bob".parse().unwrap()).unwrap();
    put(&bob, &trip_type(), "b1", trip(2, "bike", 3.0)).unwrap();
    let alice_dir = store.space_dir(alice.resident());
    assert!(alice_dir.join("conf").is_file() && du(&alice_dir) > 0);
    // Deleting a resident whose space is in use is refused, not torn away.
    assert!(matches!(store.remove_resident(alice.resident()), Err(StoreError::ResidentBusy(_))));
    let name = alice.resident().clone();
    drop(alice);
    store.remove_resident(&name).unwrap();
    assert!(!alice_dir.exists(), "the space's files are deleted");
    assert_eq!(du(&dir.path().join("db/removing")), 0);
    assert!(matches!(store.resident(&name), Err(StoreError::UnknownResident(_))));
    assert_eq!(store.residents().unwrap(), vec!["bob".parse::<ResidentName>().unwrap()]);
    // The other resident is untouched.
    assert_eq!(bob.doctype_counts().unwrap(), vec![(trip_type().to_string(), 1)]);
}

#[test]
fn idle_spaces_are_closed_past_the_bound_and_reopen_with_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { idle_spaces: 2, ..StoreOptions::default() };
    let store = Store::open_with(&dir.path().join("db"), Arc::new(Vocabulary::builtin()), options).unwrap();
    let names: Vec<ResidentName> = (0..6).map(|i| format!("r{i}").parse().unwrap()).collect();
    for (i, name) in names.iter().enumerate() {
        let space = store.create_resident(name).unwrap();
        put(&space, &trip_type(), "t1", trip(1 + i as u32, "bus", i as f64)).unwrap();
    }
    assert_eq!(store.open_spaces(), 2, "only the two most recent stay open while idle");
    // A space in use stays open whatever the bound, and a second user of
    // the same resident shares its database (sled allows one opener).
    let held: Vec<ResidentSpace> = names.iter().map(|n| store.resident(n).unwrap()).collect();
    let again = store.resident(&names[0]).unwrap();
    assert_eq!(store.open_spaces(), 6);
    put(&again, &trip_type(), "t2", trip(9, "car", 1.0)).unwrap();
    assert_eq!(held[0].doctype_counts().unwrap(), vec![(trip_type().to_string(), 2)]);
    drop((held, again));
    assert_eq!(store.open_spaces(), 2);
    for name in &names {
        assert!(store.resident(name).unwrap().verify().unwrap().is_consistent());
    }
}

/// The trigger scheduler looks at open residents and at those whose
/// database closed after writes: none can be written unseen.
#[test]
fn residents_closed_after_writes_are_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { idle_spaces: 0, ..StoreOptions::default() };
    let store = Store::open_with(&dir.path().join("db"), Arc::new(Vocabulary::builtin()), options).unwrap();
    let (writer, reader): (ResidentName, ResidentName) = ("writer".parse().unwrap(), "reader".parse().unwrap());
    drop(store.create_resident(&reader).unwrap());
    let _ = store.take_closed_with_changes();
    let space = store.create_resident(&writer).unwrap();
    put(&space, &trip_type(), "t1", trip(1, "bus", 2.0)).unwrap();
    assert_eq!(store.open_residents(), vec![writer.clone()]);
    drop(space);
    assert!(store.open_residents().is_empty());
    assert_eq!(store.take_closed_with_changes(), vec![writer.clone()]);
    assert!(store.take_closed_with_changes().is_empty(), "reported once");
    // Opened and closed without a write: nothing to report.
    drop(store.resident(&reader).unwrap().doctype_counts().unwrap());
    drop(store.resident(&writer).unwrap());
    assert!(store.take_closed_with_changes().is_empty());
}

#[test]
fn a_second_process_cannot_open_the_store() {
    let (dir, _store) = home();
    assert!(matches!(Store::open(&dir.path().join("db"), Arc::new(Vocabulary::builtin())), Err(StoreError::InUse(_))));
}

/// Builds a store the way domicile 0.1 laid it out: one database, every
/// resident's trees named `resident/NAME/KIND`.
fn legacy_store(path: &std::path::Path, from: &Store) -> Vec<(ResidentName, Vec<u8>)> {
    let db = sled::open(path).unwrap();
    let residents = db.open_tree("residents").unwrap();
    let mut exports = Vec::new();
    for name in from.residents().unwrap() {
        let space = from.resident(&name).unwrap();
        residents.insert(name.as_str(), b"{}").unwrap();
        for kind in
            ["docs", "index", "changes", "meta", "apps", "packages", "audit", "app-log", "outbox", "notifications"]
        {
            let legacy = db.open_tree(format!("resident/{name}/{kind}")).unwrap();
            for item in space.db.open_tree(kind).unwrap().iter() {
                let (k, v) = item.unwrap();
                legacy.insert(k, v).unwrap();
            }
        }
        let mut archive = Vec::new();
        space.export(&mut archive, 1).unwrap();
        exports.push((name, archive));
    }
    // A restore a crash interrupted: 0.1 removed it at the next open.
    residents.insert("half", &b"{\"restoring\":true}"[..]).unwrap();
    db.open_tree("resident/half/docs").unwrap().insert("x", "y").unwrap();
    db.flush().unwrap();
    exports
}

#[test]
fn a_home_of_the_single_database_layout_is_upgraded_with_nothing_lost_even_when_interrupted() {
    let (_d, source) = home();
    filled_space(&source);
    let bob = source.create_resident(&"bob".parse().unwrap()).unwrap();
    put(&bob, &trip_type(), "b1", trip(2, "bike", 3.0)).unwrap();
    let carol = source.create_resident(&"carol".parse().unwrap()).unwrap();
    put(&carol, &note_type(), "n1", json!({"text": "hello"})).unwrap();
    drop((bob, carol));

    let dir = tempfile::tempdir().unwrap();
    let (legacy, root) = (dir.path().join("store"), dir.path().join("spaces"));
    let exports = legacy_store(&legacy, &source);
    // The first run dies after moving one resident.
    let interrupted = std::panic::catch_unwind(|| {
        let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
        store
            .upgrade_single_database(&legacy, &mut |i, _| {
                if i == 1 {
                    panic!("the process dies here");
                }
            })
            .unwrap()
    });
    assert!(interrupted.is_err());
    assert!(legacy.is_dir(), "the old database stays until every resident is moved");
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    assert_eq!(store.residents().unwrap().len(), 1, "one resident was wholly moved, the next not at all");
    let mut totals = Vec::new();
    let report = store.upgrade_single_database(&legacy, &mut |i, n| totals.push((i, n))).unwrap();
    assert_eq!(totals, vec![(0, 2), (1, 2)], "the second run moves only the two left");
    assert_eq!((report.residents_moved, report.residents_already_moved, report.unfinished_restores_dropped), (2, 1, 1));
    assert!(!legacy.exists(), "the old database is removed once everything is moved");
    let names: Vec<ResidentName> = exports.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(store.residents().unwrap(), names);
    for (name, archive) in exports {
        let space = store.resident(&name).unwrap();
        let mut again = Vec::new();
        space.export(&mut again, 1).unwrap();
        assert!(again == archive, "{name}'s export is byte for byte what it was");
        assert!(space.verify().unwrap().is_consistent());
        assert!(space.verify_audit().unwrap().is_intact());
    }
}

#[test]
fn an_import_being_published_when_the_old_version_died_is_finished_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, root) = (dir.path().join("store"), dir.path().join("spaces"));
    {
        let db = sled::open(&legacy).unwrap();
        db.open_tree("residents").unwrap().insert("me", b"{}").unwrap();
        let staging = db.open_tree("resident/me/staging/0000000000000001").unwrap();
        let meta = db.open_tree("resident/me/meta").unwrap();
        // Two staged documents, committed (the marker), none published yet.
        for day in [3, 4] {
            let mut value = vec![b'P'];
            value.extend(serde_json::to_vec(&trip(day, "walk", 1.0)).unwrap());
            staging.insert(format!("io.domicile.mobility.trip\0t{day}"), value).unwrap();
        }
        let marker = json!({
            "tree": "resident/me/staging/0000000000000001",
            "author": {"kind": "app", "id": "org.example.i", "version": "1.0.0"},
            "at_ms": 5,
        });
        meta.insert("publish/0000000000000001", serde_json::to_vec(&marker).unwrap()).unwrap();
        // An import that never committed: its staging is not carried over.
        db.open_tree("resident/me/staging/0000000000000002").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    store.upgrade_single_database(&legacy, &mut |_, _| {}).unwrap();
    let me = store.resident(&"me".parse().unwrap()).unwrap();
    assert!(me.staging_trees().is_empty());
    assert_eq!(me.doctype_counts().unwrap(), vec![(trip_type().to_string(), 2)]);
    assert!(me.verify().unwrap().is_consistent());
}

#[test]
fn the_sequence_only_grows_across_writes_other_records_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut seen = Vec::new();
    for round in 0..3u32 {
        let store = Store::open(&path, Arc::new(Vocabulary::builtin())).unwrap();
        let space = if round == 0 { me(&store) } else { store.resident(&"me".parse().unwrap()).unwrap() };
        for day in 1..4 {
            put(&space, &trip_type(), &format!("r{round}d{day}"), trip(day, "bus", 1.0)).unwrap();
            // A number taken outside a document write, in between.
            seen.push(space.next_seq().unwrap());
        }
        seen.extend(space.changes_since(&trip_type(), 0, usize::MAX).unwrap().iter().map(|c| c.seq));
    }
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    // Each round's feed repeats the earlier rounds' records: count numbers, not records.
    let feed = Store::open(&path, Arc::new(Vocabulary::builtin())).unwrap();
    let feed = feed.resident(&"me".parse().unwrap()).unwrap().changes_since(&trip_type(), 0, usize::MAX).unwrap();
    let seqs: Vec<u64> = feed.iter().map(|c| c.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.len(), 9);
    assert!(before > seen.len(), "the feed was read more than once");
    assert_eq!(seen.len(), 18, "9 writes and 9 other numbers, none taken twice: {seen:?}");
}

#[test]
fn a_manifest_naming_an_unknown_doctype_or_field_is_refused_with_what_was_meant() {
    let vocabulary = Vocabulary::builtin();
    let manifest = |doctype: &str, fields: &str| {
        let text = format!(
            "manifest-version = 1\nid = \"org.example.app\"\nname = \"App\"\nversion = \"1.0.0\"\nworld = \"service\"\ndescription = \"An app for the test\"\n\n[[permissions]]\ndoctype = \"{doctype}\"\naccess = [\"read\"]\n{fields}purpose = \"Add up your trips per month for this test of the manifest checks\"\n"
        );
        domicile_manifest::Manifest::from_bytes(text.as_bytes()).unwrap()
    };
    let err = vocabulary.check_permissions(&manifest("io.domicile.energy.readings", "").permissions).unwrap_err();
    assert!(err.to_string().contains("did you mean `io.domicile.energy.reading`?"), "{err}");
    let err = vocabulary
        .check_permissions(&manifest("io.domicile.mobility.trip", "fields = [\"mode\", \"distance_km\"]\n").permissions)
        .unwrap_err();
    assert!(err.to_string().contains("has no field `distance_km` (did you mean `distance_m`?)"), "{err}");
    assert!(!err.to_string().contains("`mode`"), "{err}");
    // Known names pass; an app's own doctype has no schema here and passes.
    vocabulary.check_permissions(&manifest("io.domicile.mobility.trip", "fields = [\"mode\"]\n").permissions).unwrap();
    vocabulary.check_permissions(&manifest("org.example.note", "fields = [\"text\"]\n").permissions).unwrap();
}

/// sled 0.34 takes an unfinished `snap.*.generating` (what a kill during a
/// snapshot leaves) for its latest snapshot and refuses the database as
/// corrupt; the store removes it and opens the space with nothing lost.
#[test]
fn a_snapshot_a_crash_left_unfinished_does_not_lock_the_resident_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let space_dir = {
        let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
        put(&me(&store), &trip_type(), "t1", trip(2, "bike", 4.2)).unwrap();
        store.flush().unwrap();
        store.space_dir(&"me".parse().unwrap())
    };
    std::fs::write(space_dir.join("snap.7FFFFFFFFFFFFFFF.generating"), b"").unwrap();
    let refused = crate::space_config(&space_dir).open();
    assert!(matches!(refused, Err(sled::Error::Corruption { .. })), "sled alone refuses it: {refused:?}");
    drop(refused);

    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    let space = store.resident(&"me".parse().unwrap()).unwrap();
    let doc = space.get(&trip_type(), &"t1".parse().unwrap()).unwrap().expect("the trip is still there");
    assert_eq!(doc.body["mode"], "bike");
    assert!(!space_dir.join("snap.7FFFFFFFFFFFFFFF.generating").exists());
}

/// An in-memory log, as the cluster keeps one per resident: every write
/// the space acknowledged must be in it, and rebuild the same space.
#[derive(Default)]
struct MemoryLog {
    entries: std::sync::Mutex<Vec<(bool, Vec<u8>)>>,
    refuse: std::sync::atomic::AtomicBool,
}

impl MemoryLog {
    /// The last snapshot and the records after it.
    fn tail(&self) -> (Vec<u8>, Vec<Vec<u8>>, u64) {
        let entries = self.entries.lock().unwrap();
        let start = entries.iter().rposition(|(snapshot, _)| *snapshot).expect("a snapshot");
        let records = entries[start + 1..].iter().map(|(_, r)| r.clone()).collect();
        (entries[start].1.clone(), records, entries.len() as u64)
    }
}

impl Shipper for MemoryLog {
    fn ship(&self, _: &ResidentName, record: &[u8]) -> std::result::Result<Option<u64>, String> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the cluster is unreachable".into());
        }
        let mut entries = self.entries.lock().unwrap();
        entries.push((false, record.to_vec()));
        Ok(Some(entries.len() as u64))
    }
    fn ship_snapshot(&self, resident: &ResidentName, snapshot: &[u8]) -> std::result::Result<Option<u64>, String> {
        self.ship(resident, b"")?;
        let mut entries = self.entries.lock().unwrap();
        *entries.last_mut().unwrap() = (true, snapshot.to_vec());
        Ok(Some(entries.len() as u64))
    }
}

/// Everything a space holds, to compare two copies.
fn contents(space: &ResidentSpace) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for id in crate::journal::TREE_IDS {
        for item in space.tree_of(id).unwrap().iter() {
            let (k, v) = item.unwrap();
            if k.as_ref() != b"cluster.shipped-through" {
                all.push((id, k.to_vec(), v.to_vec()));
            }
        }
    }
    all
}

#[test]
fn every_kind_of_write_is_shipped_and_a_space_rebuilt_from_the_log_is_the_same() {
    let (_dir, store) = home();
    let log = Arc::new(MemoryLog::default());
    store.ship_to(log.clone()).unwrap();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    assert_eq!(log.tail().1.len(), 0, "a new resident's log starts with a snapshot");
    // Documents, apps, grants, triggers, quota, outbox, notifications,
    // reads' audit entries and app logs: each kind of write.
    put(&me, &trip_type(), "t1", trip(1, "bus", 2.0)).unwrap();
    let manifest = domicile_manifest::Manifest::parse(APP_MANIFEST).unwrap();
    let app = installed(manifest);
    me.put_app(&app, b"package bytes").unwrap();
    me.set_trigger_enabled(app.id(), "nightly", false).unwrap();
    me.set_trigger_state(app.id(), "nightly", &TriggerState { cursor: 3, ..Default::default() }).unwrap();
    me.set_quota(&Quota { max_documents: Some(100), max_bytes: None }).unwrap();
    let item = OutboxItem {
        id: 0,
        at_ms: 9,
        app: app.id().clone(),
        app_version: "1.0.0".into(),
        destination: "https://example.org".into(),
        purpose: "tell".into(),
        payload: "{}".into(),
        status: OutboxStatus::Pending,
        campaign: None,
    };
    let entry = crate::import::tests::audit(0);
    let queued = me.queue_egress(&item, &entry).unwrap();
    me.set_outbox_status(queued, OutboxStatus::Denied { at_ms: 10 }, None).unwrap();
    me.notify(&[Notification { seq: 0, at_ms: 9, app: app.id().clone(), title: "t".into(), body: "b".into() }])
        .unwrap();
    me.record_audit(std::slice::from_ref(&entry)).unwrap();
    me.append_app_log(&[AppLogEntry { at_ms: 9, app: app.id().clone(), level: "info".into(), message: "m".into() }])
        .unwrap();
    me.flush().unwrap();
    put(&me, &trip_type(), "t2", trip(2, "bike", 3.0)).unwrap();
    let shipped = log.tail().1.len();
    assert!(shipped >= 9, "{shipped} records");

    // A restarted node's space knows how far it was shipped.
    assert_eq!(me.shipped_through().unwrap(), log.tail().2);

    // Another node rebuilds the space from the log alone.
    let (_other_dir, other) = home();
    let (snapshot, records, through) = log.tail();
    let rebuilt = other.rebuild(&"me".parse().unwrap(), &snapshot, records, through).unwrap();
    assert_eq!(contents(&rebuilt), contents(&me));
    assert_eq!(rebuilt.shipped_through().unwrap(), through);
    assert!(rebuilt.verify_audit().unwrap().is_intact());
    assert!(rebuilt.verify().unwrap().is_consistent());
    drop(rebuilt);

    // Or from an earlier copy: rebuilt from the snapshot and the first
    // records, then caught up with the rest, it is the same space, and
    // takes new writes as the original would.
    let (_third_dir, third) = home();
    let (snapshot, mut records, through) = log.tail();
    let later = records.split_off(records.len() / 2);
    drop(third.rebuild(&"me".parse().unwrap(), &snapshot, records, 0).unwrap());
    third.catch_up(&"me".parse().unwrap(), later, through).unwrap();
    let caught_up = third.resident(&"me".parse().unwrap()).unwrap();
    assert_eq!(contents(&caught_up), contents(&me));
    assert_eq!(caught_up.shipped_through().unwrap(), through);
    for space in [&caught_up, &me] {
        put(space, &trip_type(), "t3", trip(3, "bike", 4.0)).unwrap();
    }
    assert_eq!(contents(&caught_up), contents(&me));
    assert!(caught_up.verify().unwrap().is_consistent());
    drop(caught_up);

    // An import travels as a snapshot, and the tail starts again there.
    let mut import = me.begin_import().unwrap();
    for day in 3..=9 {
        import
            .stage(&Change::Put {
                doctype: trip_type(),
                id: format!("i{day}").parse().unwrap(),
                body: trip(day, "car", 9.0),
            })
            .unwrap();
    }
    import.commit(&Author::Resident, 10, &[]).unwrap();
    assert_eq!(log.tail().1.len(), 0);
    let (snapshot, records, through) = log.tail();
    let rebuilt = other.rebuild(&"me".parse().unwrap(), &snapshot, records, through).unwrap();
    assert_eq!(contents(&rebuilt), contents(&me));
}

#[test]
fn a_space_rebuilt_from_a_log_counts_its_documents_again() {
    let (_dir, store) = home();
    let log = Arc::new(MemoryLog::default());
    store.ship_to(log.clone()).unwrap();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    put(&me, &trip_type(), "t1", trip(1, "bus", 2.0)).unwrap();
    let (snapshot, mut records, through) = log.tail();
    // A write shipped while an import was being published carries counters
    // that count documents the log does not have (the node was lost before
    // the import's snapshot was shipped).
    let inflated = Usage { documents: 50, bytes: 99_999 };
    let usage = crate::journal::Op {
        tree: crate::journal::META,
        key: b"usage".to_vec(),
        value: Some(serde_json::to_vec(&inflated).unwrap()),
    };
    records.push(crate::journal::encode_ops(&[usage]));
    let (_other_dir, other) = home();
    let rebuilt = other.rebuild(&"me".parse().unwrap(), &snapshot, records, through).unwrap();
    assert_eq!(rebuilt.usage().unwrap(), me.usage().unwrap());
    assert!(rebuilt.verify().unwrap().is_consistent());
}

#[test]
fn a_write_the_cluster_does_not_keep_is_not_made() {
    let (_dir, store) = home();
    let log = Arc::new(MemoryLog::default());
    store.ship_to(log.clone()).unwrap();
    let me = store.create_resident(&"me".parse().unwrap()).unwrap();
    put(&me, &trip_type(), "t1", trip(1, "bus", 2.0)).unwrap();
    let before = contents(&me);
    log.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = put(&me, &trip_type(), "t2", trip(2, "bus", 2.0)).unwrap_err();
    assert!(matches!(err, StoreError::NotShipped(_)), "{err}");
    assert!(err.to_string().contains("was not made"), "{err}");
    assert_eq!(contents(&me), before);
    // A read's audit entry waits for the next write; it is not lost when
    // a flush cannot ship it.
    me.record_audit(&[crate::import::tests::audit(0)]).unwrap();
    assert!(me.flush().is_err());
    log.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    put(&me, &trip_type(), "t3", trip(3, "bus", 2.0)).unwrap();
    let (_other_dir, other) = home();
    let (snapshot, records, through) = log.tail();
    let rebuilt = other.rebuild(&"me".parse().unwrap(), &snapshot, records, through).unwrap();
    assert_eq!(contents(&rebuilt), contents(&me));
    assert_eq!(rebuilt.verify_audit().unwrap().entries, 1);
}

/// Disk a space's directory takes (allocated blocks, not apparent size).
fn disk_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap()).map(|m| m.blocks() * 512).sum()
}

/// A new space is made with small sled segments, so that a resident
/// opened after a restart and left idle costs under 100 KB (sled fills
/// out the last segment at each open: 512 KiB at its default); a space
/// made before, with sled's default, opens with the segment size it was
/// made with (sled refuses any other), its documents all there.
#[test]
fn an_empty_space_opened_again_stays_small_and_an_older_one_keeps_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let name: ResidentName = "me".parse().unwrap();
    let space_dir = {
        let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
        store.create_resident(&name).unwrap();
        store.space_dir(&name)
    };
    for _ in 0..2 {
        let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
        store.resident(&name).unwrap().last_seq();
    }
    let conf = String::from_utf8_lossy(&std::fs::read(space_dir.join("conf")).unwrap()).into_owned();
    assert!(conf.contains(&format!("segment_size: {SPACE_SEGMENT_BYTES}")), "{conf}");
    let bytes = disk_bytes(&space_dir);
    assert!(bytes <= 100_000, "an empty space opened twice takes {bytes} bytes");

    // A space as the previous version made it: sled's default segments.
    let older: ResidentName = "older".parse().unwrap();
    let older_dir = space_dir.with_file_name("older");
    {
        let db = sled::Config::new().path(&older_dir).open().unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    let space = store.resident(&older).unwrap();
    put(&space, &trip_type(), "t1", trip(2, "bike", 4.2)).unwrap();
    drop((space, store));
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    let doc = store.resident(&older).unwrap().get(&trip_type(), &"t1".parse().unwrap()).unwrap();
    assert_eq!(doc.expect("its trip").body["mode"], "bike");
    let conf = String::from_utf8_lossy(&std::fs::read(older_dir.join("conf")).unwrap()).into_owned();
    assert!(conf.contains("segment_size: 524288"), "{conf}");
}

/// A write marks its resident for a look at their triggers (a new,
/// empty resident is not marked); a look settles the mark with when the
/// next one is due, unless the space was written while it looked; what
/// was settled outlasts the process; a removed resident has no wake.
#[test]
fn a_write_marks_its_resident_until_a_look_settles_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    let name: ResidentName = "me".parse().unwrap();
    let space = store.create_resident(&name).unwrap();
    assert!(store.trigger_wakes().unwrap().is_empty(), "an empty space needs no look");

    put(&space, &trip_type(), "t1", trip(1, "bike", 1.0)).unwrap();
    assert_eq!(store.trigger_wakes().unwrap(), [(name.clone(), 0)]);
    let look = space.trigger_look_started();
    space.settle_trigger_look(look, Some(1_800_000_000_000)).unwrap();
    assert_eq!(store.trigger_wakes().unwrap(), [(name.clone(), 1_800_000_000_000)]);

    // Written while the scheduler looked: the mark stays.
    let look = space.trigger_look_started();
    put(&space, &trip_type(), "t2", trip(2, "bike", 1.0)).unwrap();
    space.settle_trigger_look(look, None).unwrap();
    assert_eq!(store.trigger_wakes().unwrap(), [(name.clone(), 0)]);
    let look = space.trigger_look_started();
    space.settle_trigger_look(look, Some(1_900_000_000_000)).unwrap();
    drop((space, store));

    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    assert_eq!(store.trigger_wakes().unwrap(), [(name.clone(), 1_900_000_000_000)], "kept across a restart");
    let space = store.resident(&name).unwrap();
    put(&space, &trip_type(), "t3", trip(3, "bike", 1.0)).unwrap();
    assert_eq!(store.trigger_wakes().unwrap(), [(name.clone(), 0)], "a write in a new process marks again");
    let look = space.trigger_look_started();
    space.settle_trigger_look(look, None).unwrap();
    assert!(store.trigger_wakes().unwrap().is_empty(), "only a write can make a trigger due");
    put(&space, &trip_type(), "t4", trip(4, "bike", 1.0)).unwrap();
    drop(space);
    store.remove_resident(&name).unwrap();
    assert!(store.trigger_wakes().unwrap().is_empty(), "a removed resident has no wake");
}

/// A home of a version before wakes were kept: the first open marks every
/// resident once (each gets a look, as every start gave them before),
/// and a file in `wakes/` that names nobody, or holds no time, is read
/// safely.
#[test]
fn a_home_without_wakes_marks_every_resident_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let names: Vec<ResidentName> = ["ann", "bob", "cyd"].iter().map(|n| n.parse().unwrap()).collect();
    {
        let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
        for name in &names {
            store.create_resident(name).unwrap();
        }
    }
    std::fs::remove_dir_all(root.join("wakes")).unwrap();
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    let wakes = store.trigger_wakes().unwrap();
    assert_eq!(wakes, names.iter().map(|n| (n.clone(), 0)).collect::<Vec<_>>());
    drop(store);

    std::fs::write(root.join("wakes/ann"), "not a time").unwrap();
    std::fs::write(root.join("wakes/Not A Name"), "12").unwrap();
    std::fs::write(root.join("wakes/gone"), "12").unwrap();
    let store = Store::open(&root, Arc::new(Vocabulary::builtin())).unwrap();
    assert_eq!(store.trigger_wakes().unwrap().len(), 3, "a stray name is dropped, garbage reads as at once");
    assert!(!root.join("wakes/gone").exists(), "a resident who is not there loses their wake");
}
