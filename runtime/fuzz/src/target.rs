//! A fuzz target as libFuzzer is handed it: the function under test, the
//! seeds and dictionary it starts from, the longest input, and the repair
//! of what the format checks first.

use std::path::{Path, PathBuf};

/// A decoder under test: bytes in, whether it accepted them out.
pub type Decoder = Box<dyn Fn(&[u8]) -> bool + Sync>;

/// One decoder to fuzz.
pub struct Target {
    pub name: &'static str,
    /// Decodes an input, whatever it is, and says whether it was accepted
    /// (the seeds must be, so that mutations start from inputs the
    /// decoder takes). libFuzzer reports a panic, an input that runs past
    /// its `-timeout` or allocates past its limit.
    pub run: Decoder,
    /// Well-formed inputs to start from.
    pub seeds: Vec<Vec<u8>>,
    /// Tokens of the format (tags, keywords, separators) that mutations insert.
    pub dictionary: Vec<Vec<u8>>,
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// Repairs what the format checks before anything else (a checksum), so mutations reach further.
    pub fixup: Option<fn(&mut [u8])>,
}

impl Target {
    pub fn new(name: &'static str, run: impl Fn(&[u8]) -> bool + Sync + 'static) -> Target {
        Target { name, run: Box::new(run), seeds: Vec::new(), dictionary: Vec::new(), max_len: 64 * 1024, fixup: None }
    }

    pub fn seeds(mut self, seeds: impl IntoIterator<Item = Vec<u8>>) -> Target {
        self.seeds.extend(seeds);
        self
    }

    pub fn dictionary(mut self, tokens: &[&str]) -> Target {
        self.dictionary.extend(tokens.iter().map(|t| t.as_bytes().to_vec()));
        self
    }

    pub fn max_len(mut self, max_len: usize) -> Target {
        self.max_len = max_len;
        self
    }

    pub fn fixup(mut self, fixup: fn(&mut [u8])) -> Target {
        self.fixup = Some(fixup);
        self
    }

    /// Runs `input` as libFuzzer's harness does: cut to the longest input,
    /// its checksums repaired.
    pub fn run_as_fuzzed(&self, input: &[u8]) -> bool {
        let mut input = input[..input.len().min(self.max_len)].to_vec();
        if let Some(fixup) = self.fixup {
            fixup(&mut input);
        }
        (self.run)(&input)
    }
}

/// The regular files of a directory, sorted; none when it does not exist.
pub fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}
