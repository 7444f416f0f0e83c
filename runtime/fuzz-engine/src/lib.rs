//! The description of a fuzz target ([`Target`]: its decoder, seeds and
//! dictionary), which the runtime's targets hand to libFuzzer, and a small
//! mutation fuzzer on stable Rust that the sample importers' parsers still
//! run under in their test suites (their crates build only the component,
//! which a libFuzzer harness cannot link). Each target is a function from bytes to an
//! *outcome*, a short text saying what the decoder made of the input (which
//! error, or what it accepted). Without compiler coverage, distinct
//! outcomes stand in for distinct paths: an input that gives an outcome
//! not seen before joins the pool that later inputs are mutated from.
//!
//! A finding is an input that panics, runs longer than the hang limit, or
//! asks for more memory than the memory limit (when the binary installs
//! [`CappedAllocator`]). Panics are caught and the run goes on; a hang or
//! an out-of-memory input is written out before the process aborts, since
//! neither can be recovered from. Every finding is written to the findings
//! directory, named by the target and the input's hash, to be kept as a
//! regression input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A decoder under test: bytes in, outcome out.
pub type Decoder = Box<dyn Fn(&[u8]) -> String + Sync>;

/// One decoder to fuzz.
pub struct Target {
    pub name: &'static str,
    /// Decodes an input; returns what became of it (an error kind, or a summary of what was accepted).
    pub run: Decoder,
    /// Well-formed inputs to start from.
    pub seeds: Vec<Vec<u8>>,
    /// Tokens of the format (tags, keywords, separators) that mutations insert.
    pub dictionary: Vec<Vec<u8>>,
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// An input running longer than this is a hang.
    pub hang_after: Duration,
    /// Repairs what the format checks before anything else (a checksum), so mutations reach further.
    pub fixup: Option<fn(&mut [u8])>,
}

impl Target {
    pub fn new(name: &'static str, run: impl Fn(&[u8]) -> String + Sync + 'static) -> Target {
        Target {
            name,
            run: Box::new(run),
            seeds: Vec::new(),
            dictionary: Vec::new(),
            max_len: 64 * 1024,
            hang_after: Duration::from_secs(5),
            fixup: None,
        }
    }

    pub fn seeds(mut self, seeds: impl IntoIterator<Item = Vec<u8>>) -> Target {
        self.seeds.extend(seeds);
        self
    }

    /// Adds every regular file of `dir` (none when it does not exist) as a seed.
    pub fn seed_dir(self, dir: &Path) -> Target {
        let files = files_of(dir).into_iter().filter_map(|p| std::fs::read(p).ok());
        self.seeds(files)
    }

    pub fn dictionary(mut self, tokens: &[&str]) -> Target {
        self.dictionary.extend(tokens.iter().map(|t| t.as_bytes().to_vec()));
        self
    }

    pub fn max_len(mut self, max_len: usize) -> Target {
        self.max_len = max_len;
        self
    }

    pub fn hang_after(mut self, limit: Duration) -> Target {
        self.hang_after = limit;
        self
    }

    pub fn fixup(mut self, fixup: fn(&mut [u8])) -> Target {
        self.fixup = Some(fixup);
        self
    }
}

/// An error's text with its particulars blanked (numbers, quoted input),
/// so that it names the check that refused an input, not the input.
pub fn kind_of(error: &dyn std::fmt::Display) -> String {
    let mut kind = String::from("err:");
    for line in error.to_string().lines() {
        // Excerpts of the input that some errors quote (`3 | id = x`, `  |   ^`) say nothing of the check.
        let trimmed = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        if trimmed.is_empty() || trimmed.starts_with('|') {
            continue;
        }
        kind.push(' ');
        let mut quoted: Option<char> = None;
        for c in line.chars() {
            match (quoted, c) {
                (Some(q), c) if c == q => {
                    quoted = None;
                    kind.push('…');
                    kind.push(c);
                }
                (Some(_), _) => {}
                (None, '`' | '"' | '\'') => {
                    quoted = Some(c);
                    kind.push(c);
                }
                (None, c) if c.is_ascii_digit() => {
                    if !kind.ends_with('#') {
                        kind.push('#');
                    }
                }
                (None, c) => kind.push(c),
            }
        }
        if kind.len() > 200 {
            kind.truncate(kind.floor_char_boundary(200));
            break;
        }
    }
    kind
}

/// The regular files of a directory, sorted; none when it does not exist.
pub fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub target: &'static str,
    pub executions: u64,
    pub seconds: f64,
    pub distinct_outcomes: usize,
    /// Executions whose outcome starts with `ok` (the decoder accepted the input).
    pub accepted: u64,
    /// Panics: the message and the file the input was written to.
    pub panics: Vec<(String, PathBuf)>,
}

impl Report {
    pub fn executions_per_second(&self) -> f64 {
        self.executions as f64 / self.seconds.max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<10} {:>9} executions in {:>5.1} s ({:>6.0}/s), {:>5.2} % accepted, {:>6} distinct outcomes, {} panic(s), 0 hangs, 0 out-of-memory",
            self.target,
            self.executions,
            self.seconds,
            self.executions_per_second(),
            self.accepted as f64 * 100.0 / self.executions.max(1) as f64,
            self.distinct_outcomes,
            self.panics.len()
        )
    }
}

/// Settings of a run.
pub struct Settings {
    pub duration: Duration,
    pub seed: u64,
    /// Where findings are written.
    pub findings: PathBuf,
}

impl Settings {
    /// From the environment: `FUZZ_SECONDS` (default `default_seconds`),
    /// `FUZZ_SEED` (default: from the clock), `FUZZ_FINDINGS` (default
    /// `default_findings`).
    pub fn from_env(default_seconds: f64, default_findings: &Path) -> Settings {
        let seconds = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_seconds);
        let seed = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        let findings = std::env::var_os("FUZZ_FINDINGS").map_or_else(|| default_findings.to_owned(), PathBuf::from);
        Settings { duration: Duration::from_secs_f64(seconds), seed, findings }
    }
}

/// Replays the inputs kept in `regressions/<target>`, then fuzzes the target
/// with the settings from the environment (`FUZZ_SECONDS`, default
/// `default_seconds`); returns a line per panic, to assert empty. The
/// one-call form for a parser crate's test suite.
pub fn brief_run(target: &Target, regressions: &Path, default_seconds: f64, findings: &Path) -> Vec<String> {
    let settings = Settings::from_env(default_seconds, findings);
    let mut failures: Vec<String> = replay(target, &regressions.join(target.name))
        .into_iter()
        .map(|(file, message)| format!("{}: kept input {} panics again: {message}", target.name, file.display()))
        .collect();
    let report = fuzz(target, &settings);
    println!("{report}");
    failures.extend(
        report
            .panics
            .iter()
            .map(|(m, input)| format!("{}: panic `{m}` on {} (seed {})", target.name, input.display(), settings.seed)),
    );
    failures
}

/// For a test suite: replays the inputs kept in
/// `<repo>/tests/fixtures/fuzz/<target>`, fuzzes the target for
/// `FUZZ_SECONDS` (default `default_seconds`) with findings written to
/// `<repo>/target/fuzz-findings`, and panics with every failure.
pub fn assert_survives(target: &Target, repo: &Path, default_seconds: f64) {
    let failures =
        brief_run(target, &repo.join("tests/fixtures/fuzz"), default_seconds, &repo.join("target/fuzz-findings"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs every file of `dir` through the target (the inputs that once
/// crashed it); returns the panics.
pub fn replay(target: &Target, dir: &Path) -> Vec<(PathBuf, String)> {
    let mut panics = Vec::new();
    for file in files_of(dir) {
        let mut input = std::fs::read(&file).unwrap_or_default();
        if let Some(fixup) = target.fixup {
            fixup(&mut input);
        }
        if let Err(message) = execute(target, &input) {
            panics.push((file, message));
        }
    }
    panics
}

/// The input being executed, for the hang watchdog and the allocator to
/// write out when the process must abort.
struct Current {
    target: &'static str,
    findings: PathBuf,
    input: Vec<u8>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);
/// When the current execution started, in milliseconds since `EPOCH`; 0 when none runs.
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
/// Set while a panic is being caught on purpose, so the hook stays quiet.
static QUIET: AtomicBool = AtomicBool::new(false);

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn execute(target: &Target, input: &[u8]) -> Result<String, String> {
    QUIET.store(true, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    QUIET.store(false, Ordering::SeqCst);
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-text payload".into())
    })
}

/// Writes a finding; returns its path.
fn save(findings: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let dir = findings.join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{kind}-{:016x}", h.finish()));
    let _ = std::fs::write(&path, input);
    path
}

/// How many inputs mutations start from.
const POOL_SIZE: usize = 4096;

/// Fuzzes one target for the settings' duration.
pub fn fuzz(target: &Target, settings: &Settings) -> Report {
    install_hooks();
    let hang_after_ms = target.hang_after.as_millis() as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                let started = STARTED_MS.load(Ordering::SeqCst);
                if started != 0 && now_ms().saturating_sub(started) > hang_after_ms {
                    abort_with("hang", &format!("an input ran longer than {hang_after_ms} ms"));
                }
            }
        })
    };
    let mut rng = Rng(settings.seed | 1);
    let mut pool: Vec<Vec<u8>> = target.seeds.iter().map(|s| s[..s.len().min(target.max_len)].to_vec()).collect();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    // Accepted inputs are mutated half the time: variations of valid inputs
    // reach past the parser into what the decoder does with what it read.
    let mut accepted: Vec<Vec<u8>> = Vec::new();
    let mut outcomes = HashSet::new();
    let mut report = Report { target: target.name, ..Report::default() };
    let mut seen_panics = HashSet::new();
    let started = Instant::now();
    let mut next: usize = 0;
    while started.elapsed() < settings.duration {
        // Seeds first, as they are; then mutants.
        let mut input = if next < pool.len() && report.executions < target.seeds.len() as u64 {
            next += 1;
            pool[next - 1].clone()
        } else if !accepted.is_empty() && rng.below(2) == 0 {
            mutate(&mut rng, &accepted, &target.dictionary, target.max_len)
        } else {
            mutate(&mut rng, &pool, &target.dictionary, target.max_len)
        };
        if let Some(fixup) = target.fixup {
            fixup(&mut input);
        }
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Current { target: target.name, findings: settings.findings.clone(), input: input.clone() });
        STARTED_MS.store(now_ms(), Ordering::SeqCst);
        let result = execute(target, &input);
        STARTED_MS.store(0, Ordering::SeqCst);
        report.executions += 1;
        match result {
            Ok(outcome) => {
                let ok = outcome.starts_with("ok");
                report.accepted += u64::from(ok);
                if ok && accepted.len() < POOL_SIZE / 4 {
                    accepted.push(input.clone());
                } else if ok && rng.below(64) == 0 {
                    let at = rng.below(accepted.len());
                    accepted[at] = input.clone();
                }
                if outcomes.insert(digest(&outcome)) {
                    // A full pool keeps its seeds and takes the newcomer in place of a random mutant.
                    if pool.len() < POOL_SIZE {
                        pool.push(input);
                    } else {
                        let keep = target.seeds.len().min(POOL_SIZE / 2);
                        let at = keep + rng.below(POOL_SIZE - keep);
                        pool[at] = input;
                    }
                }
            }
            Err(message) => {
                let path = save(&settings.findings, target.name, "panic", &input);
                if seen_panics.insert(message.clone()) {
                    eprintln!("{}: PANIC {message} (input: {})", target.name, path.display());
                }
                report.panics.push((message, path));
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    report.seconds = started.elapsed().as_secs_f64();
    report.distinct_outcomes = outcomes.len();
    report
}

fn digest(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn install_hooks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.load(Ordering::SeqCst) {
                default(info);
            }
        }));
    });
}

/// Writes the current input as a finding of `kind`, says so, and aborts.
fn abort_with(kind: &str, why: &str) -> ! {
    LIFTED.store(true, Ordering::SeqCst);
    if let Ok(current) = CURRENT.try_lock() {
        if let Some(c) = current.as_ref() {
            let path = save(&c.findings, c.target, kind, &c.input);
            eprintln!("{}: {}: {why} (input: {})", c.target, kind.to_uppercase(), path.display());
        }
    }
    std::process::abort()
}

/// xorshift64*: fast, and reproducible from `FUZZ_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u8; 16] =
    [0, 0xff, 0x7f, 0x80, b'<', b'>', b'"', b';', b',', b'\n', b'\r', b'0', b'9', b'-', b'.', b'{'];

/// A mutant of an input from the pool: one to eight stacked changes.
fn mutate(rng: &mut Rng, pool: &[Vec<u8>], dictionary: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let mut data = pool[rng.below(pool.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64.min(len - start))).min(len);
                data.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(256.min(len - start))).min(len);
                let chunk = data[start..end].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            5 => {
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            6 => {
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            7 | 8 if !dictionary.is_empty() => {
                let token = &dictionary[rng.below(dictionary.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, token.iter().copied());
            }
            9 if len > 0 => data.truncate(rng.below(len)),
            10 if len > 0 => {
                // A chunk repeated many times: deep nesting, long runs, quadratic paths.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16.min(len - start))).min(len);
                let chunk = data[start..end].to_vec();
                let times = 1 + rng.below(2000);
                let at = rng.below(len + 1);
                let repeated: Vec<u8> = chunk.iter().copied().cycle().take(chunk.len() * times).collect();
                data.splice(at..at, repeated);
            }
            11 if len > 0 => {
                // A number made larger, negative or odd.
                let at = rng.below(len);
                let digits: &[u8] =
                    [&b"99999999999999999999"[..], b"-1", b"0", b"1e308", b"NaN", b"2147483648"][rng.below(6)];
                data.splice(at..at, digits.iter().copied());
            }
            _ => {}
        }
        data.truncate(max_len);
    }
    data
}

/// Bytes allocated now, and whether the cap is lifted (while a finding is written).
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static LIFTED: AtomicBool = AtomicBool::new(false);

/// A global allocator that counts live bytes and, past its cap, writes the
/// input being executed as an out-of-memory finding and aborts. Install it
/// in the fuzzing binary:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: domicile_fuzz_engine::CappedAllocator = domicile_fuzz_engine::CappedAllocator::new(2 << 30);
/// ```
pub struct CappedAllocator {
    cap: usize,
}

impl CappedAllocator {
    pub const fn new(cap: usize) -> CappedAllocator {
        CappedAllocator { cap }
    }
}

// SAFETY: every call is forwarded to the system allocator; the counter only observes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if now > self.cap && STARTED_MS.load(Ordering::Relaxed) != 0 && !LIFTED.load(Ordering::SeqCst) {
            abort_with("oom", &format!("an input made the decoder hold more than {} MiB", self.cap >> 20));
        }
        // SAFETY: the caller's `layout` is passed on unchanged, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` or `realloc` above with this `layout`, so from System.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let grow = new_size - layout.size();
            let now = ALLOCATED.fetch_add(grow, Ordering::Relaxed) + grow;
            if now > self.cap && STARTED_MS.load(Ordering::Relaxed) != 0 && !LIFTED.load(Ordering::SeqCst) {
                abort_with("oom", &format!("an input made the decoder hold more than {} MiB", self.cap >> 20));
            }
        } else {
            ALLOCATED.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from System through this allocator, with this `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_panic_and_keeps_inputs_with_new_outcomes() {
        let dir = std::env::temp_dir().join(format!("fuzz-engine-test-{}", std::process::id()));
        let target = Target::new("toy", |data: &[u8]| {
            if data.starts_with(b"BOOM") {
                panic!("boom");
            }
            format!("first byte {:?}", data.first())
        })
        .seeds([b"BOO".to_vec()])
        .dictionary(&["M"]);
        let settings = Settings { duration: Duration::from_millis(1500), seed: 7, findings: dir.clone() };
        let report = fuzz(&target, &settings);
        assert!(report.executions > 100, "{report}");
        assert!(report.distinct_outcomes > 1, "{report}");
        assert!(!report.panics.is_empty(), "the mutations reach BOOM: {report}");
        let saved = &report.panics[0].1;
        assert!(std::fs::read(saved).unwrap().starts_with(b"BOOM"));
        // A kept finding replays as a failure.
        assert_eq!(replay(&target, &dir.join("toy")).len(), files_of(&dir.join("toy")).len());
        let _ = std::fs::remove_dir_all(dir);
    }
}
