//! The runtime's decoders of untrusted input, as fuzz targets: app
//! manifests, packages, catalogue indexes, export archives (restored into
//! a real store), query selectors (run against a real store) and the
//! entries a cluster's node reads from NATS. libFuzzer fuzzes them,
//! through cargo-fuzz (the harnesses are `runtime/fuzz/libfuzzer`, the
//! seeds and dictionaries written by [`write_corpus`]); the sample
//! importers' parsers have harnesses of their own (`sample-apps/fuzz`),
//! and `runtime/fuzz/fuzz.sh` runs them all.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

mod target;

use domicile_manifest::{Grants, Manifest};
use domicile_package::{seal, sign_index, unseal, Catalogue, Role, SecretKey, TrustStore};
use domicile_store::{
    AppRefusal, Author, Change, DocId, InstalledApp, PackageVetting, Query, ResidentName, Selector, Sort, Store,
    VettedApp, Vocabulary,
};
use serde_json::{json, Value};
pub use target::{files_of, Target};

/// The repository's root (for seeds and regression inputs).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository is there")
}

/// Where the inputs that once broke a target are kept, one folder per target.
pub fn regressions() -> PathBuf {
    repo().join("tests/fixtures/fuzz")
}

const TOML_TOKENS: &[&str] = &[
    "manifest-version = 1\n",
    "id = ",
    "name = ",
    "version = ",
    "world = \"importer\"\n",
    "world = \"service\"\n",
    "description = ",
    "[[permissions]]\n",
    "doctype = ",
    "access = [\"read\", \"write\", \"delete\"]\n",
    "fields = [",
    "purpose = ",
    "[limits]\n",
    "memory-mib = ",
    "cpu-ms = ",
    "wall-ms = ",
    "[[egress]]\n",
    "destination = ",
    "[scratch]\n",
    "\"\"\"",
    "'''",
    "\\u202e",
    "\\u0000",
    "[",
    "]",
    "{",
    "}",
    "=",
    "\n",
    "\"",
    "#",
    ".",
    "9999999999999999999",
];

fn manifest_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = files_of(&repo().join("manifests"))
        .into_iter()
        .chain(files_of(&repo().join("tests/fixtures/manifests")))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    seeds.sort();
    seeds
}

/// An app manifest, as `install` and `pack` read it.
pub fn manifest() -> Target {
    Target::new("manifest", |data| Manifest::from_bytes(data).is_ok()).seeds(manifest_seeds()).dictionary(TOML_TOKENS)
}

/// A package file: the container, its signature under the key it names, then its manifest.
pub fn package() -> Target {
    let mut seeds: Vec<Vec<u8>> =
        files_of(&repo().join("tests/fixtures/packages")).into_iter().filter_map(|p| std::fs::read(p).ok()).collect();
    // Small packages reach the manifest after a few mutations: a real manifest, a tiny component.
    let key = SecretKey::generate();
    for manifest in manifest_seeds() {
        seeds.push(seal(&manifest, b"\0asm\x0d\0\x01\0", &key).expect("seals"));
    }
    Target::new("package", |data| {
        let Ok(sealed) = unseal(data) else { return false };
        let claimed = *sealed.claimed_publisher();
        sealed.verify_with(&claimed).is_ok_and(|verified| Manifest::from_bytes(verified.manifest_bytes()).is_ok())
    })
    .seeds(seeds)
    .max_len(512 * 1024)
}

/// A catalogue's index, signed by a key the home trusts (so the parser,
/// not the signature check, meets the input), with real packages beside
/// it; every listed version is fetched as `install` would.
pub fn catalogue() -> Target {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let packages = repo().join("sample-apps/catalogue/packages");
    std::fs::create_dir_all(dir.path().join("packages")).expect("packages folder");
    for file in files_of(&packages) {
        std::fs::copy(&file, dir.path().join("packages").join(file.file_name().unwrap())).expect("copies");
    }
    let key = SecretKey::generate();
    let mut trust = TrustStore::open(dir.path().join("trust.json")).expect("an empty trust store");
    trust.add(key.public(), "fuzz catalogue", &[Role::Catalogue]).expect("trusts");
    let publisher = repo().join("sample-apps/keys/sample-publisher.pub");
    let publisher =
        domicile_package::PublicKey::from_text_or_file(&publisher.to_string_lossy()).expect("the sample key");
    trust.add(publisher, "sample publisher", &[Role::Publisher]).expect("trusts");
    let seed = std::fs::read(repo().join("sample-apps/catalogue/index.json")).expect("the sample index");
    let dir = Arc::new(dir);
    Target::new("catalogue", move |data| {
        let path = dir.path();
        std::fs::write(path.join("index.json"), data).expect("writes");
        std::fs::write(path.join("index.sig"), sign_index(data, &key)).expect("writes");
        let Ok(catalogue) = Catalogue::open(path, &trust) else { return false };
        catalogue.index().apps.iter().take(3).all(|app| {
            app.versions.iter().take(2).all(|version| catalogue.fetch(&app.id, Some(&version.version), &trust).is_ok())
        })
    })
    .seeds([seed])
    .dictionary(&[
        "\"package\": \"packages/../../etc/passwd.dpkg\"",
        "\"packages/",
        ".dpkg\"",
        "\"version\": \"99.0.0\"",
        "\"sha256\": \"",
        "\"size\": 18446744073709551615",
        "\"apps\": []",
        "\"versions\": []",
        "\"format\": ",
        "\"id\": \"io.domicile.sample.budget\"",
        "\"publisher\": \"",
        "null",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\\u0000",
    ])
}

/// A store with one resident and a few trips, for the selector target.
struct QueryHome {
    _dir: tempfile::TempDir,
    space: domicile_store::ResidentSpace,
}

fn query_home() -> QueryHome {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = Store::open(dir.path(), Arc::new(Vocabulary::builtin())).expect("a store");
    let space = store.create_resident(&"fuzz".parse().expect("a name")).expect("a resident");
    let trip: domicile_manifest::Doctype = "io.domicile.mobility.trip".parse().expect("a doctype");
    let modes = ["bike", "car", "walk", "train"];
    let changes: Vec<Change> = (0..40)
        .map(|i| Change::Put {
            doctype: trip.clone(),
            id: format!("t{i:03}").parse::<DocId>().expect("an id"),
            body: json!({
                "start": format!("2026-03-{:02}T08:00:00Z", 1 + i % 28), "end": format!("2026-03-{:02}T08:30:00Z", 1 + i % 28),
                "date": format!("2026-03-{:02}", 1 + i % 28), "month": "2026-03", "distance_m": i as f64 * 731.5,
                "duration_s": 1800, "mode": modes[i % 4], "points": i, "source": "fuzz.gpx"
            }),
        })
        .collect();
    space.commit(&changes, &Author::Resident, 1, &[]).expect("commits");
    QueryHome { _dir: dir, space }
}

/// A query selector, parsed, then run against a real store (index ranges, sorts, limits).
pub fn selector() -> Target {
    let home = query_home();
    let trip: domicile_manifest::Doctype = "io.domicile.mobility.trip".parse().expect("a doctype");
    let docs: Vec<Value> =
        vec![json!({"mode": "bike", "date": "2026-03-02", "distance_m": 1200.5, "nested": {"a": [1, 2]}}), json!({})];
    Target::new("selector", move |data| {
        let Ok(text) = std::str::from_utf8(data) else { return false };
        let Ok(selector) = Selector::parse(text) else { return false };
        for doc in &docs {
            selector.matches(doc);
        }
        for (sort, limit) in [(None, None), (Some(("date", false)), Some(5)), (Some(("distance_m", true)), None)] {
            let sort = sort.map(|(field, descending)| Sort {
                field: domicile_store::FieldPath::parse(field).expect("a field"),
                descending,
            });
            let query = Query { doctype: trip.clone(), selector: selector.clone(), sort, limit };
            if home.space.query_all(query).is_err() {
                return false;
            }
        }
        true
    })
    .seeds(
        [
            r#"{}"#,
            r#"{"mode": "bike"}"#,
            r#"{"date": {"$gte": "2026-03-05", "$lt": "2026-03-20"}}"#,
            r#"{"distance_m": {"$gt": 1000, "$lte": 20000}, "mode": {"$in": ["bike", "walk"]}}"#,
            r#"{"nested.a": {"$exists": true}}"#,
            r#"{"start.date": {"$exists": false}}"#,
        ]
        .map(|s| s.as_bytes().to_vec()),
    )
    .dictionary(&[
        "\"$gt\"",
        "\"$gte\"",
        "\"$lt\"",
        "\"$lte\"",
        "\"$in\"",
        "\"$exists\"",
        "\"$or\"",
        "\"a.b.c\"",
        "[",
        "]",
        "{",
        "}",
        "null",
        "true",
        "1e308",
        "-0",
        "\"\\ud800\"",
    ])
}

/// Checks each package of an archive as the host does, without compiling
/// its component (which needs the wasm engine): the signature under the
/// key it names, then its manifest.
struct SignatureVetting;

impl PackageVetting for SignatureVetting {
    fn vet(&self, record: &domicile_manifest::AppId, package: &[u8]) -> Result<VettedApp, AppRefusal> {
        let sealed = unseal(package).map_err(|e| AppRefusal::Altered(e.to_string()))?;
        let claimed = *sealed.claimed_publisher();
        let verified = sealed.verify_with(&claimed).map_err(|e| AppRefusal::Altered(e.to_string()))?;
        let manifest =
            Manifest::from_bytes(verified.manifest_bytes()).map_err(|e| AppRefusal::Altered(e.to_string()))?;
        if &manifest.id != record {
            return Err(AppRefusal::Altered(format!("the package is {}, not {record}", manifest.id)));
        }
        Ok(VettedApp {
            manifest,
            publisher: claimed.to_string(),
            component_digest: verified.component_digest_hex(),
            hold: None,
        })
    }
}

/// An export archive of a resident with an app, trips and audit entries.
fn archive_seed() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = Store::open(dir.path(), Arc::new(Vocabulary::builtin())).expect("a store");
    let space = store.create_resident(&"seed".parse().expect("a name")).expect("a resident");
    let manifest_bytes = std::fs::read(repo().join("manifests/gpx-importer.toml")).expect("a manifest");
    let manifest = Manifest::from_bytes(&manifest_bytes).expect("valid");
    let package = seal(&manifest_bytes, b"\0asm\x0d\0\x01\0", &SecretKey::generate()).expect("seals");
    let vetted = SignatureVetting.vet(&manifest.id, &package).expect("genuine");
    let app = InstalledApp {
        grants: Grants::all(&manifest),
        manifest,
        publisher: vetted.publisher,
        component_digest: vetted.component_digest,
        installed_at_ms: 1,
        held: None,
        triggers_off: Default::default(),
    };
    space.put_app(&app, &package).expect("records the app");
    let author = Author::App { id: app.manifest.id.to_string(), version: app.manifest.version.to_string() };
    let trip: domicile_manifest::Doctype = "io.domicile.mobility.trip".parse().expect("a doctype");
    let changes: Vec<Change> = (0..3)
        .map(|i| Change::Put {
            doctype: trip.clone(),
            id: format!("gpx-{i}").parse().expect("an id"),
            body: json!({"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:20:00Z", "date": "2026-03-02",
                "month": "2026-03", "distance_m": 4200.0, "duration_s": 1200, "mode": "bike", "points": 120, "source": "week.gpx"}),
        })
        .collect();
    space.commit(&changes, &author, 2, &[]).expect("commits");
    let mut out = Vec::new();
    space.export(&mut out, 3).expect("exports");
    out
}

/// Recomputes the checksum of every tar header, so mutations get past the
/// tar reader's first check to the restore's own.
pub fn fix_tar_checksums(data: &mut [u8]) {
    let mut at = 0;
    while at + 512 <= data.len() {
        let header = &mut data[at..at + 512];
        if &header[257..262] == b"ustar" {
            header[148..156].fill(b' ');
            let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
            let text = format!("{sum:06o}\0 ");
            header[148..156].copy_from_slice(text.as_bytes());
        }
        at += 512;
    }
}

/// An export archive, restored into a real store as a new resident (and
/// removed again when it was accepted).
pub fn archive() -> Target {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = Store::open(dir.path(), Arc::new(Vocabulary::builtin())).expect("a store");
    let store = Mutex::new((dir, store));
    let counter = AtomicU64::new(0);
    let mut seeds = vec![archive_seed()];
    seeds.extend(
        files_of(&repo().join("tests/fixtures/hostile"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .filter_map(|p| std::fs::read(p).ok()),
    );
    Target::new("archive", move |data| {
        let guard = store.lock().unwrap_or_else(|e| e.into_inner());
        let name: ResidentName = format!("r{}", counter.fetch_add(1, Ordering::Relaxed)).parse().expect("a name");
        let restored = guard.1.restore(Cursor::new(data), Some(&name), &SignatureVetting).is_ok();
        if restored {
            let _ = guard.1.remove_resident(&name);
        }
        restored
    })
    .seeds(seeds)
    .max_len(1024 * 1024)
    .fixup(fix_tar_checksums)
    .dictionary(&[
        "manifest.json",
        "documents.jsonl",
        "changes.jsonl",
        "audit.jsonl",
        "apps.jsonl",
        "outbox.jsonl",
        "\"seq\":",
        "\"audit_head\":",
        "\"doctype\":",
        "\"id\":",
        "\"body\":",
        "\"updated_at_ms\":",
        "18446744073709551615",
        "../",
        "\n",
    ])
}

/// An entry of one of the cluster's buckets in NATS, as a node reads it:
/// the input's first byte picks the bucket (and, for the shared settings,
/// the catalogues' list or a campaign), the rest is the value, sealed
/// with the fuzz target's own cluster key (so that mutations reach the
/// record decoders and the checks of the names they hold) and also given
/// as it is (so that the seal's own parser meets it).
pub fn cluster_entry() -> Target {
    use domicile_cluster::untrusted::{open_entry, seal_entry, BUCKETS};
    let key = domicile_cluster::ClusterKey::generate();
    let now = 1_780_000_000_000u64;
    let seeds = [
        (0u8, json!({ "advertise": "http://10.0.0.5:8080", "residents": 3, "started_ms": now, "heartbeat_ms": now })),
        (1, json!({ "node": "n1", "since_ms": now })),
        (2, json!({ "resident": "alice", "csrf": "0123abcd", "expires_ms": now })),
        (6, json!({ "to": "n2", "state": "copying", "requested_ms": now, "updated_ms": now, "copied_through": 42 })),
        (
            7,
            json!([{ "name": "domicile sample catalogue", "index_sha256": "ab".repeat(32),
                     "files": ["index.json", "index.sig", "packages/budget-0.2.1.dpkg"] }]),
        ),
        (8, json!({ "position": 42, "mac": "ab".repeat(32) })),
        // 16 is the shared settings' bucket too (16 % 9), as a campaign's entry.
        (16, json!({ "campaign": "{\"id\": \"fr.nantes.energy-2026\"}", "signature": "ab".repeat(64) })),
    ];
    let seeds: Vec<Vec<u8>> = seeds
        .iter()
        .map(|(pick, value)| [vec![*pick], serde_json::to_vec(value).expect("JSON")].concat())
        .chain([[vec![3u8], b"alice".to_vec()].concat(), [vec![4u8], "ab".repeat(32).into_bytes()].concat()])
        .collect();
    Target::new("cluster-entry", move |input| {
        let Some((&pick, value)) = input.split_first() else { return false };
        let bucket = BUCKETS[usize::from(pick) % BUCKETS.len()];
        let entry = match bucket {
            "domicile-trust" if (pick as usize / BUCKETS.len()).is_multiple_of(2) => "catalogues",
            "domicile-trust" => "campaign.fr.nantes.energy-2026",
            _ => "alice",
        };
        let _ = open_entry(&key, bucket, entry, value);
        // What a node would log of an entry, accepted or refused.
        match open_entry(&key, bucket, entry, &seal_entry(&key, bucket, entry, value)) {
            Ok(summary) => !summary.to_string().is_empty(),
            Err(why) => why.to_string().is_empty(),
        }
    })
    .seeds(seeds)
    .dictionary(&[
        "\"advertise\":",
        "\"node\":",
        "\"resident\":",
        "\"index_sha256\":",
        "\"files\":",
        "\"position\":",
        "\"mac\":",
        "\"state\":",
        "\"campaign\":",
        "\"signature\":",
        "http://",
        "https://",
        "../",
        "/",
        "\\\\",
        "\\u0000",
        "DS1",
        "DS2",
        "18446744073709551615",
        "\"done\"",
        "[",
        "]",
        "{",
        "}",
    ])
    .max_len(16 * 1024)
}

/// Every host-side target.
pub fn targets() -> Vec<Target> {
    vec![manifest(), package(), catalogue(), selector(), archive(), cluster_entry()]
}

/// Writes each target's seeds to `dir/<target>/` (one file each, named by
/// its SHA-256) and its dictionary, if any, to `dir/<target>.dict`, in libFuzzer's
/// format: the corpus and `-dict` a fuzzing run starts from.
pub fn write_corpus(targets: &[Target], dir: &Path) -> std::io::Result<()> {
    use sha2::Digest;
    for target in targets {
        let seeds = dir.join(target.name);
        std::fs::create_dir_all(&seeds)?;
        for seed in &target.seeds {
            std::fs::write(seeds.join(hex::encode(sha2::Sha256::digest(seed))), seed)?;
        }
        // libFuzzer refuses an empty dictionary file: none is written.
        if !target.dictionary.is_empty() {
            let dictionary: String =
                target.dictionary.iter().map(|token| format!("\"{}\"\n", dictionary_entry(token))).collect();
            std::fs::write(dir.join(format!("{}.dict", target.name)), dictionary)?;
        }
    }
    Ok(())
}

/// A dictionary token as libFuzzer reads it between quotes: printable
/// ASCII as it is, but `"` and `\`, and every other byte as `\xNN`.
fn dictionary_entry(token: &[u8]) -> String {
    token
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' => format!("\\x{b:02X}"),
            0x20..=0x7e => char::from(b).to_string(),
            _ => format!("\\x{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dictionary_token_is_written_as_libfuzzer_reads_it() {
        assert_eq!(super::dictionary_entry(b"id = "), "id = ");
        assert_eq!(super::dictionary_entry(b"\"done\"\n"), "\\x22done\\x22\\x0A");
        assert_eq!(super::dictionary_entry(b"\\u0000"), "\\x5Cu0000");
    }
}
