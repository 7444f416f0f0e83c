use super::*;

fn trusted(key: &SecretKey) -> (tempfile::TempDir, TrustStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::open(dir.path().join("trust.json")).unwrap();
    trust.add(key.public(), "test publisher", &[]).unwrap();
    (dir, trust)
}

#[test]
fn a_sealed_package_verifies_and_returns_its_parts() {
    let key = SecretKey::generate();
    let (_dir, trust) = trusted(&key);
    let bytes = seal(b"manifest", b"component", &key).unwrap();
    let pkg = unseal(&bytes).unwrap().verify(&trust).unwrap();
    assert_eq!(pkg.manifest_bytes(), b"manifest");
    assert_eq!(pkg.component_bytes(), b"component");
    assert_eq!(pkg.publisher(), &key.public());
}

#[test]
fn every_flipped_byte_is_detected() {
    let key = SecretKey::generate();
    let (_dir, trust) = trusted(&key);
    let bytes = seal(b"manifest text", b"component bytes", &key).unwrap();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let verdict = unseal(&bad).and_then(|p| p.verify(&trust));
        assert!(verdict.is_err(), "flipping byte {i} went unnoticed");
    }
}

#[test]
fn untrusted_signer_is_refused_even_with_a_valid_signature() {
    let key = SecretKey::generate();
    let other = SecretKey::generate();
    let (_dir, trust) = trusted(&key);
    let bytes = seal(b"m", b"c", &other).unwrap();
    assert!(
        matches!(unseal(&bytes).unwrap().verify(&trust), Err(PackageError::UntrustedPublisher(k)) if k == other.public())
    );
}

#[test]
fn a_swapped_publisher_key_does_not_help_an_attacker() {
    // Re-label a package signed by an untrusted key with the trusted key.
    let key = SecretKey::generate();
    let attacker = SecretKey::generate();
    let (_dir, trust) = trusted(&key);
    let mut bytes = seal(b"m", b"evil", &attacker).unwrap();
    bytes[20..52].copy_from_slice(&key.public().to_bytes());
    assert!(matches!(unseal(&bytes).unwrap().verify(&trust), Err(PackageError::BadSignature)));
}

#[test]
fn malformed_framing_is_an_error_not_a_panic() {
    assert!(matches!(unseal(b""), Err(PackageError::NotAPackage)));
    assert!(matches!(unseal(b"\0asm\x01\0\0\0"), Err(PackageError::NotAPackage)));
    let key = SecretKey::generate();
    let bytes = seal(b"m", b"c", &key).unwrap();
    for cut in 0..bytes.len() {
        assert!(unseal(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(unseal(&long), Err(PackageError::Malformed(_))));
    // A declared length far beyond the limit is refused before allocation.
    let mut huge = bytes[..116].to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(unseal(&huge), Err(PackageError::TooLarge { .. })));
}

#[test]
fn keys_round_trip_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate();
    let path = dir.path().join("k.key");
    key.save(&path).unwrap();
    assert!(key.save(&path).is_err(), "must not overwrite a key");
    let loaded = SecretKey::load(&path).unwrap();
    assert_eq!(loaded.public(), key.public());
    let text = key.public().to_string();
    assert_eq!(text.parse::<PublicKey>().unwrap(), key.public());
    assert!("zz".parse::<PublicKey>().is_err());
    assert!(SecretKey::load(&dir.path().join("missing")).is_err());
    std::fs::write(dir.path().join("pub"), &text).unwrap();
    assert!(SecretKey::load(&dir.path().join("pub")).is_err());
}

#[test]
fn trust_store_persists_and_rejects_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.json");
    let key = SecretKey::generate().public();
    let mut t = TrustStore::open(&path).unwrap();
    t.add(key, "a", &[]).unwrap();
    assert!(matches!(t.add(key, "b", &[Role::Publisher]), Err(TrustError::AlreadyTrusted(_))));
    t.add(key, "", &[Role::Catalogue]).unwrap();
    assert!(t.trusted_as(&key, Role::Catalogue).is_some() && t.trusted_as(&key, Role::Publisher).is_some());
    let t = TrustStore::open(&path).unwrap();
    assert_eq!(t.keys().len(), 1);
    std::fs::write(&path, b"{not json").unwrap();
    assert!(matches!(TrustStore::open(&path), Err(TrustError::Corrupt { .. })));
}

#[test]
fn a_revoked_publisher_is_refused_and_can_be_trusted_again() {
    let key = SecretKey::generate();
    let (_dir, mut trust) = trusted(&key);
    let bytes = seal(b"m", b"c", &key).unwrap();
    trust.revoke(&key.public(), 5).unwrap();
    assert!(matches!(trust.revoke(&key.public(), 6), Err(TrustError::AlreadyRevoked(_))));
    assert!(matches!(unseal(&bytes).unwrap().verify(&trust), Err(PackageError::RevokedPublisher(_))));
    // Whoever vouches for it.
    let vouched = unseal(&bytes).unwrap().verify_vouched(&trust, &key.public(), "of this app");
    assert!(matches!(vouched, Err(PackageError::RevokedPublisher(_))));
    trust.add(key.public(), "", &[]).unwrap();
    assert!(unseal(&bytes).unwrap().verify(&trust).is_ok());
}

#[test]
fn a_vouched_package_must_be_signed_by_the_vouched_key() {
    let (key, other) = (SecretKey::generate(), SecretKey::generate());
    let (_dir, trust) = trusted(&key);
    let bytes = seal(b"m", b"c", &other).unwrap();
    let err = unseal(&bytes).unwrap().verify_vouched(&trust, &key.public(), "this app was installed with").unwrap_err();
    assert!(matches!(err, PackageError::WrongPublisher { .. }), "{err}");
    // The catalogue vouches for a key the trust store does not list: accepted.
    assert!(unseal(&bytes).unwrap().verify_vouched(&trust, &other.public(), "of this app").is_ok());
}

const MANIFEST: &str = r#"
manifest-version = 1
id = "org.example.app"
name = "App"
version = "VERSION"
world = "service"
description = "An app"

[[permissions]]
doctype = "io.domicile.mobility.trip"
access = ["read"]
purpose = "Read your trips to count them"
"#;

fn catalogue_dir(publisher: &SecretKey, versions: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("packages")).unwrap();
    for v in versions {
        let manifest = MANIFEST.replace("VERSION", v);
        let pkg = seal(manifest.as_bytes(), b"\0asm component", publisher).unwrap();
        std::fs::write(dir.path().join(format!("packages/org.example.app-{v}.dpkg")), pkg).unwrap();
    }
    dir
}

#[test]
fn a_built_catalogue_opens_only_under_a_trusted_catalogue_key() {
    let (publisher, signer) = (SecretKey::generate(), SecretKey::generate());
    let dir = catalogue_dir(&publisher, &["1.0.0", "1.2.0", "1.10.0"]);
    let index = build_catalogue(dir.path(), "Test catalogue", &signer).unwrap();
    assert_eq!(index.apps.len(), 1);
    let app = &index.apps[0];
    assert_eq!(app.publisher, publisher.public());
    assert_eq!(app.latest().version, semver::Version::new(1, 10, 0), "semver order, not text order");
    assert_eq!(app.versions[0].permissions.len(), 1);

    let trust_dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::open(trust_dir.path().join("trust.json")).unwrap();
    assert!(matches!(Catalogue::open(dir.path(), &trust), Err(CatalogueError::UntrustedKey(_))));
    // Trusted as a publisher is not trusted as a catalogue.
    trust.add(signer.public(), "signer", &[Role::Publisher]).unwrap();
    assert!(matches!(Catalogue::open(dir.path(), &trust), Err(CatalogueError::UntrustedKey(_))));
    trust.add(signer.public(), "signer", &[Role::Catalogue]).unwrap();
    let catalogue = Catalogue::open(dir.path(), &trust).unwrap();
    let id: domicile_manifest::AppId = "org.example.app".parse().unwrap();
    let fetched = catalogue.fetch(&id, None, &trust).unwrap();
    assert_eq!(fetched.version.version.to_string(), "1.10.0");
    assert_eq!(fetched.manifest.version.to_string(), "1.10.0", "the signed manifest, verified");
    // The package verified under the publisher the index vouches for.
    assert!(unseal(&fetched.bytes).unwrap().verify_vouched(&trust, &fetched.app.publisher, "of this app").is_ok());
    assert!(catalogue.fetch(&id, Some(&semver::Version::new(9, 0, 0)), &trust).is_err());

    trust.revoke(&signer.public(), 1).unwrap();
    assert!(matches!(Catalogue::open(dir.path(), &trust), Err(CatalogueError::RevokedKey(_))));
}

#[test]
fn an_altered_index_or_a_replaced_package_is_refused() {
    let (publisher, signer) = (SecretKey::generate(), SecretKey::generate());
    let dir = catalogue_dir(&publisher, &["1.0.0"]);
    build_catalogue(dir.path(), "Test catalogue", &signer).unwrap();
    let trust_dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::open(trust_dir.path().join("trust.json")).unwrap();
    trust.add(signer.public(), "signer", &[Role::Catalogue]).unwrap();
    let id: domicile_manifest::AppId = "org.example.app".parse().unwrap();

    // A package replaced by another validly signed one (by the same publisher even).
    let other = seal(MANIFEST.replace("VERSION", "1.0.0").as_bytes(), b"\0asm other code", &publisher).unwrap();
    let path = dir.path().join("packages/org.example.app-1.0.0.dpkg");
    let original = std::fs::read(&path).unwrap();
    std::fs::write(&path, other).unwrap();
    let err = Catalogue::open(dir.path(), &trust).unwrap().fetch(&id, None, &trust).unwrap_err();
    assert!(matches!(err, CatalogueError::DigestMismatch { .. }), "{err}");
    std::fs::write(&path, original).unwrap();

    // An index edited after signing (say, to widen a purpose or point elsewhere).
    let index_path = dir.path().join("index.json");
    let text = std::fs::read_to_string(&index_path).unwrap();
    std::fs::write(&index_path, text.replace("Read your trips to count them", "Read your trips to sell them")).unwrap();
    assert!(matches!(Catalogue::open(dir.path(), &trust), Err(CatalogueError::BadSignature)));

    // An index that points outside the catalogue, even correctly signed.
    let evil = text.replace("packages/org.example.app-1.0.0.dpkg", "../../etc/passwd.dpkg");
    std::fs::write(&index_path, &evil).unwrap();
    let signature = signer.sign(&crate::catalogue::signed_digest(evil.as_bytes()));
    std::fs::write(
        dir.path().join("index.sig"),
        format!("domicile-catalogue-signature-v1\nkey {}\nsignature {}\n", signer.public(), hex::encode(signature)),
    )
    .unwrap();
    let err = Catalogue::open(dir.path(), &trust).unwrap_err();
    assert!(err.to_string().contains("must be packages/<name>.dpkg"), "{err}");
}

/// Signs `text` as the index of the catalogue in `dir`, as a catalogue's
/// key holder (or a thief of that key) could.
fn sign_index(dir: &std::path::Path, signer: &SecretKey, text: &str) {
    std::fs::write(dir.join("index.json"), text).unwrap();
    let signature = signer.sign(&crate::catalogue::signed_digest(text.as_bytes()));
    std::fs::write(
        dir.join("index.sig"),
        format!("domicile-catalogue-signature-v1\nkey {}\nsignature {}\n", signer.public(), hex::encode(signature)),
    )
    .unwrap();
}

#[test]
fn an_entry_must_be_the_app_and_version_its_package_proves() {
    let (publisher, signer) = (SecretKey::generate(), SecretKey::generate());
    let dir = catalogue_dir(&publisher, &["1.0.0"]);
    // App B, by the same publisher, in the same catalogue.
    let b = MANIFEST.replace("org.example.app", "org.example.b").replace("VERSION", "2.0.0");
    std::fs::write(
        dir.path().join("packages/org.example.b-2.0.0.dpkg"),
        seal(b.as_bytes(), b"\0asm b", &publisher).unwrap(),
    )
    .unwrap();
    build_catalogue(dir.path(), "Test catalogue", &signer).unwrap();
    let trust_dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::open(trust_dir.path().join("trust.json")).unwrap();
    trust.add(signer.public(), "signer", &[Role::Catalogue]).unwrap();
    // The index lists app A with B's package, digest and size.
    let mut index: CatalogueIndex =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let b_version = index.apps.iter().find(|a| a.id.as_str() == "org.example.b").unwrap().versions[0].clone();
    let a = index.apps.iter_mut().find(|a| a.id.as_str() == "org.example.app").unwrap();
    a.versions[0] = CatalogueVersion { version: a.versions[0].version.clone(), ..b_version };
    sign_index(dir.path(), &signer, &serde_json::to_string_pretty(&index).unwrap());
    let id: domicile_manifest::AppId = "org.example.app".parse().unwrap();
    let err = Catalogue::open(dir.path(), &trust).unwrap().fetch(&id, None, &trust).unwrap_err();
    assert!(matches!(err, CatalogueError::NotTheListedApp { .. }), "{err}");
    assert!(err.to_string().contains("its package is org.example.b 2.0.0"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_package_that_is_a_fifo_or_leads_outside_is_refused_without_waiting() {
    let (publisher, signer) = (SecretKey::generate(), SecretKey::generate());
    let dir = catalogue_dir(&publisher, &["1.0.0"]);
    build_catalogue(dir.path(), "Test catalogue", &signer).unwrap();
    let trust_dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::open(trust_dir.path().join("trust.json")).unwrap();
    trust.add(signer.public(), "signer", &[Role::Catalogue]).unwrap();
    let id: domicile_manifest::AppId = "org.example.app".parse().unwrap();
    let package = dir.path().join("packages/org.example.app-1.0.0.dpkg");

    // A FIFO inside the catalogue: nobody will ever write to it.
    std::fs::remove_file(&package).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&package).status().unwrap();
    assert!(made.success());
    let err = Catalogue::open(dir.path(), &trust).unwrap().fetch(&id, None, &trust).unwrap_err();
    assert!(err.to_string().contains("a named pipe (FIFO), not a regular file"), "{err}");

    // A symbolic link out of the catalogue directory.
    std::fs::remove_file(&package).unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::os::unix::fs::symlink(outside.path(), &package).unwrap();
    let err = Catalogue::open(dir.path(), &trust).unwrap().fetch(&id, None, &trust).unwrap_err();
    assert!(err.to_string().contains("leads outside the catalogue directory"), "{err}");
}

/// Homes sharing an artifact cache compile the same app at once: every
/// writer must succeed and the file must end up as one writer's whole bytes.
#[test]
fn writers_racing_on_one_path_each_replace_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifact.cwasm");
    let writers: Vec<_> = (0..8u8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    write_atomically(&path, &vec![i; 64 * 1024]).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 64 * 1024);
    assert!(bytes.iter().all(|b| *b == bytes[0]), "the file mixes two writers' bytes");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("artifact.cwasm")], "temporary files were left behind");
}
