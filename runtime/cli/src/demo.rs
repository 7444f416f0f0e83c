//! `domicile demo`: a demo home with the sample apps and sample data,
//! walked through step by step. The sample catalogue (index, signature,
//! packages), the sample key and the data are built into the binary, so the
//! demo runs from anywhere.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use domicile_manifest::{AppId, Grants};
use domicile_package::{Catalogue, CatalogueSources, PublicKey, Role};
use domicile_store::{AuditFilter, ResidentName};

use crate::home::Home;

const SAMPLE_PUBLISHER: &str = include_str!("../../../sample-apps/keys/sample-publisher.pub");
/// The sample catalogue, file by file (path inside the catalogue, bytes).
const CATALOGUE: [(&str, &[u8]); 4] = [
    ("index.json", include_bytes!("../../../sample-apps/catalogue/index.json")),
    ("index.sig", include_bytes!("../../../sample-apps/catalogue/index.sig")),
    (
        "packages/gpx-importer-0.1.0.dpkg",
        include_bytes!("../../../sample-apps/catalogue/packages/gpx-importer-0.1.0.dpkg"),
    ),
    (
        "packages/mobility-footprint-0.1.0.dpkg",
        include_bytes!("../../../sample-apps/catalogue/packages/mobility-footprint-0.1.0.dpkg"),
    ),
];
const SAMPLE_APPS: [&str; 2] = ["io.domicile.sample.gpx-importer", "io.domicile.sample.mobility-footprint"];
const SAMPLE_GPX: (&str, &[u8]) =
    ("week-around-nantes.gpx", include_bytes!("../../../sample-apps/data/week-around-nantes.gpx"));

/// Marks a directory as made by the demo, so a later demo may replace it.
const MARKER: &str = ".domicile-demo";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

pub async fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("domicile-demo"));
    prepare_dir(&dir)?;
    println!("domicile demo: a personal data home in {}", dir.display());

    step(1, "Create the home, with one resident, `me`");
    let me: ResidentName = "me".parse()?;
    let home = Home::create(&dir, &me)?;
    std::fs::write(dir.join(MARKER), b"created by `domicile demo`; a new demo replaces this directory\n")?;
    let space = home.resident(None)?;

    step(2, "Trust the key of the sample catalogue (it vouches for the publishers of the apps it lists)");
    let key: PublicKey = SAMPLE_PUBLISHER.trim().parse()?;
    home.trust()?.add(key, "domicile samples", &[Role::Catalogue])?;
    println!("    trusted {key} for catalogues");
    let catalogue_dir = dir.join("catalogue");
    for (path, bytes) in CATALOGUE {
        let path = catalogue_dir.join(path);
        std::fs::create_dir_all(path.parent().expect("catalogue files are in a folder"))?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let catalogue = Catalogue::open(&catalogue_dir, &home.trust()?)?;
    CatalogueSources::open(dir.join("catalogues.json"))?.add(&catalogue)?;
    println!("    added the catalogue `{}`: its signed index verified", catalogue.index().name);

    step(3, "Install two sample apps from the catalogue: package digest and signature are checked first");
    let runtime = home.runtime()?;
    let mut ids = Vec::new();
    for id in SAMPLE_APPS {
        let (package, listed, _) = catalogue.fetch(&id.parse()?, None)?;
        let prepared = runtime.prepare_install(&space, &home.trust()?, package, Some(&listed.publisher))?;
        let manifest = prepared.manifest().clone();
        println!("    {} {} ({}) asks for:", manifest.name, manifest.version, manifest.id);
        for p in &manifest.permissions {
            let verbs: Vec<&str> = p.access.iter().map(|a| a.as_str()).collect();
            let fields = p
                .fields
                .as_ref()
                .map(|f| format!(" (fields: {})", f.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")));
            println!("      {} {}{}: {}", verbs.join("+"), p.doctype, fields.unwrap_or_default(), p.purpose);
        }
        let app = runtime.install(&space, prepared, Grants::all(&manifest))?;
        println!("      granted: {}", app.grants);
        ids.push(app.manifest.id);
    }
    let (importer, footprint): (&AppId, &AppId) = (&ids[0], &ids[1]);

    step(4, "Import a GPS export (GPX) with the importer app, inside the sandbox");
    let (name, bytes) = SAMPLE_GPX;
    let summary = runtime.run_importer(&space, importer, name, bytes).await?;
    println!("    {name}: {summary}");
    let again = runtime.run_importer(&space, importer, name, bytes).await?;
    let trips =
        space.doctype_counts()?.into_iter().find(|(d, _)| d == "io.domicile.mobility.trip").map_or(0, |(_, n)| n);
    println!("    imported again: {again}; still {trips} trips (imports are idempotent)");

    step(5, "Run the mobility footprint service over the trips");
    let output = runtime.run_service(&space, footprint, "{}").await?;
    print_footprint(&output)?;

    step(6, "Read the audit log: every access an app made to your data, hash-chained");
    for line in space.audit_summary(&AuditFilter::default())? {
        println!("    {}", line.sentence());
    }
    let check = space.verify_audit()?;
    println!("    chain intact: {} entries, last hash {}…", check.entries, &check.head[..16]);

    let h = dir.display();
    println!("\nDone. Explore the demo home:");
    println!("  domicile --home {h} catalogue list");
    println!("  domicile --home {h} apps");
    println!("  domicile --home {h} docs io.domicile.mobility.trip --where '{{\"mode\": \"bike\"}}'");
    println!("  domicile --home {h} run {footprint} --input '{{\"factors\": {{\"car\": 0.21}}}}'");
    println!("  domicile --home {h} revoke {footprint} && domicile --home {h} run {footprint}");
    println!("  domicile --home {h} audit --summary && domicile --home {h} audit verify");
    Ok(())
}

/// The demo directory must be new, empty, or an earlier demo (replaced).
fn prepare_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if dir.join(MARKER).is_file() {
        return std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace the previous demo in {}", dir.display()));
    }
    if dir.read_dir().with_context(|| format!("cannot read {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not a previous demo; choose another directory with --dir", dir.display());
    }
    Ok(())
}

fn print_footprint(output: &str) -> Result<()> {
    let report: serde_json::Value = serde_json::from_str(output)?;
    println!("    {:<8} {:<6} {:>5} {:>9} {:>10}", "month", "mode", "trips", "km", "kg CO2e");
    for (month, modes) in report["months"].as_object().into_iter().flatten() {
        for (mode, t) in modes.as_object().into_iter().flatten() {
            println!(
                "    {:<8} {:<6} {:>5} {:>9.1} {:>10.2}",
                month,
                mode,
                t["trips"],
                t["km"].as_f64().unwrap_or(0.0),
                t["kg_co2e"].as_f64().unwrap_or(0.0)
            );
        }
    }
    println!(
        "    total: {:.1} km, {:.2} kg CO2e",
        report["total_km"].as_f64().unwrap_or(0.0),
        report["total_kg_co2e"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}
