//! Wall-clock time as apps see it: the system clock, or a fixed instant so
//! that tests and demos are reproducible.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    /// Always this many milliseconds since the Unix epoch.
    Fixed(u64),
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            Clock::Fixed(ms) => *ms,
        }
    }
}

/// The same clock for WASI guests (`wasi:clocks/wall-clock`).
impl wasmtime_wasi::HostWallClock for Clock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}
