//! The limits of one invocation: what the manifest asks, capped by the
//! operator. Exceeding any of them ends the invocation with an error that
//! names the limit; the runtime and the next invocation are unaffected.

use std::fmt;

use domicile_manifest::Limits;

/// Which limit ended an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Cpu,
    Memory,
    Table,
    WallTime,
    HostCalls,
    Documents,
    Output,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Cpu => "CPU time",
            LimitKind::Memory => "memory",
            LimitKind::Table => "table size",
            LimitKind::WallTime => "wall-clock time",
            LimitKind::HostCalls => "host calls",
            LimitKind::Documents => "documents read",
            LimitKind::Output => "output size",
        })
    }
}

/// What an app gets when its manifest asks nothing, and the most it can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub default: u64,
    pub max: u64,
}

impl Cap {
    fn resolve(self, asked: Option<u64>) -> u64 {
        asked.unwrap_or(self.default).min(self.max)
    }
}

/// The operator's caps, per kind of limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitCaps {
    pub memory_mib: Cap,
    pub cpu_ms: Cap,
    pub wall_ms: Cap,
    pub host_calls: Cap,
    pub documents: Cap,
    pub output_kib: Cap,
}

impl Default for LimitCaps {
    fn default() -> Self {
        LimitCaps {
            memory_mib: Cap { default: 64, max: 512 },
            cpu_ms: Cap { default: 5_000, max: 60_000 },
            wall_ms: Cap { default: 30_000, max: 300_000 },
            host_calls: Cap { default: 1_000_000, max: 20_000_000 },
            documents: Cap { default: 1_000_000, max: 20_000_000 },
            output_kib: Cap { default: 1024, max: 16 * 1024 },
        }
    }
}

/// The limits of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub memory_mib: u64,
    pub cpu_ms: u64,
    pub wall_ms: u64,
    pub host_calls: u64,
    pub documents: u64,
    pub output_kib: u64,
}

impl Resolved {
    pub fn of(caps: &LimitCaps, asked: &Limits) -> Resolved {
        Resolved {
            memory_mib: caps.memory_mib.resolve(asked.memory_mib.map(|v| v.get())),
            cpu_ms: caps.cpu_ms.resolve(asked.cpu_ms.map(|v| v.get())),
            wall_ms: caps.wall_ms.resolve(asked.wall_ms.map(|v| v.get())),
            host_calls: caps.host_calls.resolve(asked.host_calls.map(|v| v.get())),
            documents: caps.documents.resolve(asked.documents.map(|v| v.get())),
            output_kib: caps.output_kib.resolve(asked.output_kib.map(|v| v.get())),
        }
    }

    /// The limit of `kind`, in words (`5000 ms`).
    pub fn describe(&self, kind: LimitKind) -> String {
        match kind {
            LimitKind::Cpu => format!("{} ms", self.cpu_ms),
            LimitKind::Memory => format!("{} MiB", self.memory_mib),
            LimitKind::Table => "table elements".into(),
            LimitKind::WallTime => format!("{} ms", self.wall_ms),
            LimitKind::HostCalls => format!("{} calls", self.host_calls),
            LimitKind::Documents => format!("{} documents", self.documents),
            LimitKind::Output => format!("{} KiB", self.output_kib),
        }
    }
}

/// The limits of one running invocation, enforced: linear memory and
/// tables (as wasmtime's resource limiter), host calls and documents read
/// (charged by each capability); remembers which limit stopped the app.
pub(crate) struct Limiter {
    max_memory: usize,
    host_calls_left: u64,
    documents_left: u64,
    pub(crate) exceeded: Option<LimitKind>,
}

impl Limiter {
    pub(crate) fn new(limits: &Resolved) -> Limiter {
        Limiter {
            max_memory: usize::try_from(limits.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
            host_calls_left: limits.host_calls,
            documents_left: limits.documents,
            exceeded: None,
        }
    }

    /// Counts one call to a domicile interface; past the limit, the
    /// invocation ends (a trap naming the limit).
    pub(crate) fn charge_call(&mut self) -> wasmtime::Result<()> {
        self.charge(LimitKind::HostCalls, 1)
    }

    /// Counts documents handed to the app.
    pub(crate) fn charge_documents(&mut self, n: u64) -> wasmtime::Result<()> {
        self.charge(LimitKind::Documents, n)
    }

    fn charge(&mut self, kind: LimitKind, n: u64) -> wasmtime::Result<()> {
        let left = match kind {
            LimitKind::HostCalls => &mut self.host_calls_left,
            _ => &mut self.documents_left,
        };
        match left.checked_sub(n) {
            Some(rest) => {
                *left = rest;
                Ok(())
            }
            None => {
                self.exceeded = Some(kind);
                Err(wasmtime::Error::msg(format!("{kind} limit exceeded")))
            }
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = Some(LimitKind::Memory);
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > crate::engine::MAX_TABLE_ELEMENTS {
            self.exceeded = Some(LimitKind::Table);
            return Err(wasmtime::Error::msg("table limit exceeded"));
        }
        Ok(true)
    }
}
