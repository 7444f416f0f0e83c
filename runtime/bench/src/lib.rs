//! domicile's benchmarks, out of the product's command: each measures a
//! cost of domicile against its baseline in the same run (raw wasmtime,
//! native Rust, raw sled, the same runs in-process, one node against three)
//! on scratch homes deleted afterwards, and prints a table, or JSON.
//!
//! - [`bench`]: `domicile bench`, the runtime (an invocation, a scan, an
//!   import, epoch interruption);
//! - [`server`]: `domicile bench-server`, many residents over HTTP;
//! - [`residents`]: `domicile bench-residents`, what one more resident costs;
//! - [`cluster`]: `domicile bench-cluster`, a cluster of three nodes on NATS;
//! - [`campaign`]: `domicile bench-campaign`, a campaign's reports and its
//!   two aggregators over HTTP.
//!
//! The `domicile` binary dispatches to them; `bench-residents` and
//! `bench-cluster` start that same binary as servers and nodes.

pub mod bench;
pub mod campaign;
pub mod cluster;
pub mod residents;
pub mod server;

/// Prints a bench's report: its JSON with `--json`, else `table` of it.
pub(crate) fn emit(report: &serde_json::Value, json: bool, table: fn(&serde_json::Value)) {
    if json {
        println!("{report}");
    } else {
        table(report);
    }
}
