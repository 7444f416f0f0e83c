use super::*;

fn trusted(key: &SecretKey) -> (tempfile::TempDir, TrustStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::open(dir.path().join("trust.json")).unwrap();
    trust.add(key.public(), "test publisher").unwrap();
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
    t.add(key, "a").unwrap();
    assert!(matches!(t.add(key, "b"), Err(TrustError::AlreadyTrusted(_))));
    let t = TrustStore::open(&path).unwrap();
    assert_eq!(t.keys().len(), 1);
    std::fs::write(&path, b"{not json").unwrap();
    assert!(matches!(TrustStore::open(&path), Err(TrustError::Corrupt { .. })));
}
