//! The process-wide wasmtime engine, its epoch ticker, and the cache of
//! compiled components.
//!
//! Components are compiled once, at install, and the native artifact is
//! cached under the component's sha256 and the engine's compatibility hash.
//! Runs only load artifacts. An artifact is deserialised only after its own
//! sha256 matches the one recorded when it was written, so a corrupted or
//! truncated file is recompiled from the verified package, never executed.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use domicile_package::write_atomically;

use crate::HostError;

/// How often the engine's epoch advances: the granularity of CPU limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances, memories and tables one component may use: enough for
/// what wit-component and language toolchains produce (the app's module,
/// shims, adapters).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;
/// Bytes of memory and tables a pool slot keeps mapped between runs, when
/// the kernel can say which pages a run dirtied (`PAGEMAP_SCAN`, Linux
/// 6.7+): only those are reset, and the next run finds the rest mapped.
/// Rust guests keep their 1 MiB stack at the bottom of linear memory, so
/// this must cover it and the first heap pages. Without the scan, every
/// kept byte is reset with `memset` at every run, so much less is kept.
const KEEP_RESIDENT_SCANNED: usize = 2 * 1024 * 1024;
const KEEP_RESIDENT_UNSCANNED: usize = 128 * 1024;
/// Elements of one table; the same bound as the invocation's limiter.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 20_000;

/// The engine, with a pooling instance allocator of `slots` component
/// instances whose memories may grow to `max_memory` bytes: instantiation
/// reuses pre-reserved slots instead of mapping memory for every run.
/// With `reuse_functions`, Cranelift keeps what it compiled in a
/// [`FunctionCache`] and compiles again only functions it has not seen.
pub(crate) fn new_engine(slots: u32, max_memory: u64, reuse_functions: bool) -> Result<Engine, HostError> {
    let engine_err = |e: wasmtime::Error| HostError::Engine(e.to_string());
    let mut config = engine_config(slots, max_memory);
    if reuse_functions {
        config.enable_incremental_compilation(Arc::new(FunctionCache::default())).map_err(engine_err)?;
    }
    Engine::new(&config).map_err(engine_err)
}

/// The machine code of compiled functions, by Cranelift's key (a hash of
/// the function's body and of the compiler's settings), in memory: a
/// rebuilt app whose interpreter did not change (Python, JavaScript) finds
/// all of it here. Full at [`FunctionCache::MAX_BYTES`]: later functions
/// are compiled, not kept.
#[derive(Debug, Default)]
pub(crate) struct FunctionCache {
    entries: std::sync::Mutex<FunctionCacheEntries>,
    hits: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct FunctionCacheEntries {
    code: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl FunctionCache {
    const MAX_BYTES: usize = 1024 * 1024 * 1024;
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let code = entries.code.get(key)?.clone();
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(std::borrow::Cow::Owned(code))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let size = key.len() + value.len();
        if entries.bytes + size > Self::MAX_BYTES {
            return false;
        }
        entries.bytes += size;
        if let Some(replaced) = entries.code.insert(key.to_vec(), value) {
            entries.bytes -= key.len() + replaced.len();
        }
        true
    }
}

/// The engine settings domicile runs apps with (also the fair baseline for
/// benchmarks against raw wasmtime).
pub fn engine_config(slots: u32, max_memory: u64) -> Config {
    let scan = PoolingAllocationConfig::is_pagemap_scan_available();
    let keep_resident = if scan { KEEP_RESIDENT_SCANNED } else { KEEP_RESIDENT_UNSCANNED };
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_memories(slots * MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_tables(slots * TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .table_elements(MAX_TABLE_ELEMENTS)
        // Reset the first pages of a reused slot in place rather than
        // returning them to the kernel: the next run touches them again.
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(KEEP_RESIDENT_UNSCANNED)
        .pagemap_scan(if scan { wasmtime::Enabled::Yes } else { wasmtime::Enabled::No })
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX));
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    // Guests get a bounded native stack; deep recursion traps cleanly.
    config.max_wasm_stack(1024 * 1024);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("domicile-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Compiled components on disk, one file per (component, engine) pair,
/// bounded in size: when a new artifact takes it past `max_bytes`, those
/// used least recently (a load marks an artifact used) are removed.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_tag: String,
    max_bytes: u64,
}

impl ArtifactCache {
    pub(crate) fn new(dir: &Path, max_bytes: u64, engine: &Engine) -> ArtifactCache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache { dir: dir.to_owned(), engine_tag: format!("{:016x}", hasher.finish()), max_bytes }
    }

    fn path(&self, component_digest: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{component_digest}-{}.{ext}", self.engine_tag))
    }

    /// Compiles verified component bytes and caches the artifact. The
    /// cache only saves time: when it cannot be written (full disk, a
    /// read-only shared directory), the app still runs, compiled afresh the
    /// next time, and the operator is warned.
    pub(crate) fn compile(
        &self,
        engine: &Engine,
        component_digest: &str,
        bytes: &[u8],
    ) -> Result<Component, HostError> {
        let component = Component::new(engine, bytes).map_err(|e| HostError::InvalidComponent(format!("{e:#}")))?;
        let artifact = component.serialize().map_err(|e| HostError::Engine(e.to_string()))?;
        if let Err(e) = self.store(component_digest, &artifact) {
            tracing::warn!(component = component_digest, cache = %self.dir.display(), error = %e,
                "could not keep the compiled app in the artifact cache; it will be compiled again next time");
        }
        Ok(component)
    }

    fn store(&self, component_digest: &str, artifact: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(&self.path(component_digest, "cwasm"), artifact)?;
        write_atomically(
            &self.path(component_digest, "sha256"),
            hex::encode(domicile_package::sha256(artifact)).as_bytes(),
        )?;
        self.prune()
    }

    /// Removes the artifacts used least recently until the cache holds at
    /// most `max_bytes` (the newest one stays, whatever its size).
    fn prune(&self) -> std::io::Result<()> {
        let mut artifacts = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "cwasm") {
                // Another process may have removed it meanwhile.
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                artifacts.push((meta.modified()?, meta.len(), path));
            }
        }
        let mut total: u64 = artifacts.iter().map(|a| a.1).sum();
        artifacts.sort();
        for (_, len, path) in artifacts.iter().take(artifacts.len().saturating_sub(1)) {
            if total <= self.max_bytes {
                break;
            }
            for removed in [path.clone(), path.with_extension("sha256")] {
                match std::fs::remove_file(&removed) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            total = total.saturating_sub(*len);
            tracing::info!(artifact = %path.display(), "removed from the artifact cache, used least recently");
        }
        Ok(())
    }

    /// Loads a cached artifact if it is present and intact.
    #[allow(unsafe_code)]
    pub(crate) fn load(&self, engine: &Engine, component_digest: &str) -> Option<Component> {
        let path = self.path(component_digest, "cwasm");
        let expected = std::fs::read_to_string(self.path(component_digest, "sha256")).ok()?;
        let artifact = std::fs::read(&path).ok()?;
        if hex::encode(domicile_package::sha256(&artifact)) != expected.trim() {
            tracing::warn!(component = component_digest, "cached artifact is corrupt; recompiling");
            return None;
        }
        // SAFETY: this file was written by `compile` above from a component
        // whose package signature verified, with an engine of the same
        // compatibility hash (part of the file name), and its checksum was
        // just checked, so it is the artifact wasmtime produced.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => {
                // Used now: the last to go when the cache is pruned. (A
                // cache shared read-only stays as it is.)
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                Some(c)
            }
            Err(e) => {
                tracing::warn!(component = component_digest, error = %e, "cached artifact rejected; recompiling");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component with `functions` distinct functions and a data segment.
    fn component(functions: u32, data: &str) -> Vec<u8> {
        use wasm_encoder::{
            CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection, MemorySection,
            MemoryType, Module, ModuleArg, ModuleSection, TypeSection, ValType,
        };
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        let (mut declared, mut exports, mut code) = (FunctionSection::new(), ExportSection::new(), CodeSection::new());
        for i in 0..functions {
            declared.function(0);
            exports.export(&format!("f{i}"), ExportKind::Func, i);
            let mut body = Function::new([]);
            body.instructions().local_get(0).i32_const(i as i32).i32_mul().end();
            code.function(&body);
        }
        let mut memories = MemorySection::new();
        memories.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
        let mut segments = DataSection::new();
        segments.active(0, &ConstExpr::i32_const(0), data.bytes());
        let mut module = Module::new();
        module
            .section(&types)
            .section(&declared)
            .section(&memories)
            .section(&exports)
            .section(&code)
            .section(&segments);
        let mut component = wasm_encoder::Component::new();
        component.section(&ModuleSection(&module));
        let mut instances = wasm_encoder::InstanceSection::new();
        instances.instantiate(0, std::iter::empty::<(&str, ModuleArg)>());
        component.section(&instances);
        component.finish()
    }

    #[test]
    fn a_rebuilt_component_reuses_the_functions_it_did_not_change() {
        let cache = Arc::new(FunctionCache::default());
        let mut config = engine_config(1, 1 << 20);
        config.enable_incremental_compilation(cache.clone()).unwrap();
        let engine = Engine::new(&config).unwrap();

        let compiled = || cache.entries.lock().unwrap().code.len();
        let hits = || cache.hits.load(Ordering::Relaxed);

        Component::new(&engine, component(20, "first build")).unwrap();
        let first = compiled();
        assert!(first >= 20, "each function was compiled and kept: {first}");
        // Other data, same code: the functions are reused.
        let before = hits();
        Component::new(&engine, component(20, "second build")).unwrap();
        let second = compiled();
        // What the build changes, a few functions of the module's own
        // plumbing, is compiled (how many varies from run to run: up to 4
        // seen, under load); none of the 20 app functions is.
        assert!(second - first < 10, "{} functions compiled again", second - first);
        assert!(hits() - before >= 20, "hits: {}", hits() - before);
        // One function more: it is compiled, the 20 others reused.
        let before = hits();
        Component::new(&engine, component(21, "third build")).unwrap();
        let third = compiled() - second;
        assert!((1..10).contains(&third), "{third} functions compiled for one new one");
        assert!(hits() - before >= 20, "hits: {}", hits() - before);
    }

    #[test]
    fn a_full_function_cache_keeps_nothing_more() {
        let cache = FunctionCache::default();
        use wasmtime::CacheStore;
        assert!(cache.insert(b"key", vec![0; 16]));
        assert!(!cache.insert(b"big", vec![0; FunctionCache::MAX_BYTES]));
        assert!(cache.get(b"big").is_none());
        assert_eq!(cache.get(b"key").unwrap().len(), 16);
    }
    /// Past its size, the cache drops the artifacts used least recently: a
    /// load marks one used; the newest stays whatever its size.
    #[test]
    fn a_full_artifact_cache_drops_what_was_used_least_recently() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(&engine_config(1, 1 << 20)).unwrap();
        let cache = ArtifactCache::new(dir.path(), 250, &engine);
        let at = |seconds: u64| std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        let age = |digest: &str, when| {
            let file = std::fs::File::options().append(true).open(cache.path(digest, "cwasm")).unwrap();
            file.set_modified(when).unwrap();
        };
        cache.store("a", &[1; 100]).unwrap();
        age("a", at(1_000));
        cache.store("b", &[2; 100]).unwrap();
        age("b", at(2_000));
        // `a` used after `b`: `b` is the one to go.
        age("a", at(3_000));
        cache.store("c", &[3; 100]).unwrap();
        let kept = |digest: &str| cache.path(digest, "cwasm").exists() && cache.path(digest, "sha256").exists();
        assert_eq!((kept("a"), kept("b"), kept("c")), (true, false, true));
        assert!(!cache.path("b", "sha256").exists(), "its checksum goes with it");
        cache.store("big", &[4; 400]).unwrap();
        assert!(kept("big"), "the newest stays, even alone past the size");
        assert!(!kept("a") && !kept("c"));
    }
}
