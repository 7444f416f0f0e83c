//! The verbs, by family: each file holds its verbs' arguments (clap) and
//! what they do, and answers through `crate::answer`.

pub mod aggregator;
pub mod apps;
pub mod archive;
pub mod audit;
pub mod campaigns;
pub mod data;
pub mod doctypes;
pub mod outbox;
pub mod packaging;
pub mod publish;
pub mod residents;
pub mod serve;
pub mod showcase;
pub mod triggers;
pub mod trust;
