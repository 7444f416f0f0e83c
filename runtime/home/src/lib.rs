//! domicile's service layer: a [`Home`] and every operation a resident or
//! an operator can make on it, each returning a typed outcome.
//!
//! A home is a directory:
//!
//! ```text
//! HOME/spaces/          the residents' data, a sled database each (domicile_store::Store)
//! HOME/trust.json       trusted keys (publishers, catalogues), revoked ones marked
//! HOME/catalogues.json  the catalogues apps are installed and updated from
//! HOME/config.toml      operator settings (optional): limits on apps, the server
//! HOME/accounts.json    residents' password hashes and API tokens, the operator token
//! HOME/cache/           compiled components (rebuildable)
//! HOME/scratch/         apps' private scratch directories, per resident
//! ```
//!
//! The CLI and the HTTP API are two front-ends over this crate: they parse
//! input, call an operation here, and render its outcome. Whatever must
//! always happen around an operation (a failed resident creation rolled
//! back, apps of a revoked key held, re-consent on an update that asks for
//! more) happens here, once. Error messages say what is wrong; advice on
//! which command or screen to use next is each front-end's to add.
//!
//! # The contract with front-ends
//!
//! - **Every change goes through a `Home` operation**: documents, apps and
//!   grants, runs and imports (apps write), residents, passwords, tokens,
//!   trusted keys, catalogues, the outbox, triggers. An operation takes the
//!   home's clock itself, so a front-end never stamps a time. Some
//!   operations are one line over the store or the runtime today; they are
//!   still the way in, so that what must come with a change later (the
//!   cluster's shipping, an audit entry) has one place to go.
//! - **Reads may go straight to what holds the data**: a resident's
//!   [`ResidentSpace`] (documents, queries, the change feed, the audit log
//!   and its check, the outbox, notifications, the app log), the residents'
//!   list ([`Home::store`]), the trust store and catalogues
//!   ([`Home::trust`], [`Home::catalogue_sources`]), accounts' read side
//!   ([`Home::accounts`]: sign-in, tokens, whether a resident may sign in).
//!   Reading needs no bookkeeping, and a wrapper per read would only forward.
//! - **Escape hatches, for machinery under the operations only**: a node
//!   moving a resident between nodes adopts account records and ships the
//!   store's log through [`Home::store`] and [`Home::accounts`] directly
//!   (`runtime/server`'s cluster module); the benchmarks (`runtime/bench`)
//!   create residents and set passwords the same way on their scratch
//!   homes, to measure the layers under the operations. Neither is an
//!   operation of a resident or an operator.
//!
//! `tests/server.rs` lists every operation with its CLI command and its
//! HTTP route and runs both against a live server: an operation only one
//! front-end reaches fails it.

mod accounts;
mod apps;
mod campaigns;
mod config;
mod documents;
mod keys;
mod operations;
mod private;
mod residents;
mod triggers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use domicile_host::{Clock, HostError, Runtime};
use domicile_package::{CatalogueError, CatalogueSources, KeyError, PackageError, TrustError, TrustStore};
use domicile_store::{ResidentName, ResidentSpace, Store, StoreError, UpgradeReport, Vocabulary};

pub use accounts::{
    check_password, new_password, new_secret, sha256_hex, AccountError, Accounts, TokenInfo, MAX_PASSWORD_BYTES,
};
pub use apps::{Installing, PackageSource, UpdateOutcome};
pub use campaigns::{Delivered, ListedCampaign, Participation, RESULT_DOCTYPE};
pub use config::{HomeConfig, ServerSettings};
pub use keys::{format_ms, HeldApp};
pub use operations::Operation;
pub use residents::{AddedResident, Password};
pub use triggers::{latest_slot, next_slot, Due, TriggerInfo, TriggerRun};

/// Where domicile 0.1 kept every resident's data, in one database.
const LEGACY_STORE: &str = "store";

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("no domicile home at {0}")]
    NoHome(PathBuf),
    #[error("{0} is already a domicile home")]
    AlreadyAHome(PathBuf),
    #[error("this home has no resident yet")]
    NoResidentYet,
    #[error("this home has {} residents ({}): say which one", .0.len(), .0.join(", "))]
    WhichResident(Vec<String>),
    #[error("cannot use {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("cannot upgrade the home's store {path} (nothing was lost: the next open tries again): {source}")]
    Upgrade { path: PathBuf, source: StoreError },
    #[error("a version is chosen among a catalogue's versions; a package file has one")]
    VersionOfAFile,
    #[error("the catalogue {} offers {} {} signed by {}, but {} was installed from {}: an app's publisher cannot change", .0.catalogue, .0.app, .0.version, .0.offered, .0.app, .0.installed)]
    OtherPublisher(Box<OtherPublisher>),
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Grant(#[from] domicile_manifest::GrantError),
    #[error(transparent)]
    Manifest(#[from] domicile_manifest::ManifestError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Egress(#[from] domicile_egress::EgressError),
    #[error(transparent)]
    Campaign(#[from] domicile_campaign::CampaignError),
}

/// An update offered by another publisher than the installed app's.
#[derive(Debug)]
pub struct OtherPublisher {
    pub app: String,
    pub catalogue: String,
    pub version: semver::Version,
    pub offered: String,
    pub installed: String,
}

pub type Result<T, E = HomeError> = std::result::Result<T, E>;

/// What opening a home did besides opening it.
#[derive(Debug, Clone)]
pub enum OpenEvent {
    /// A home of domicile 0.1 is being moved to a database per resident.
    UpgradeStarted,
    /// Resident `index` (from 1) of `total` is being moved.
    MovingResident {
        index: usize,
        total: usize,
    },
    Upgraded(UpgradeReport),
    /// The home was readable by other users of the machine: `entries`
    /// files and folders are now its owner's alone.
    Tightened {
        entries: usize,
    },
}

/// A home, open: its store locked for this process.
pub struct Home {
    dir: PathBuf,
    store: Store,
    accounts: Accounts,
    clock: Clock,
    runtime: OnceLock<Arc<Runtime>>,
    in_flight: triggers::InFlight,
}

fn is_home(dir: &Path) -> bool {
    dir.join("spaces").is_dir() || dir.join(LEGACY_STORE).is_dir()
}

impl Home {
    /// Creates a new home with its first resident.
    pub fn create(dir: &Path, first: &ResidentName, clock: Clock) -> Result<Home> {
        if is_home(dir) {
            return Err(HomeError::AlreadyAHome(dir.to_owned()));
        }
        private::create_dir(dir).map_err(|source| HomeError::Io { path: dir.to_owned(), source })?;
        let home = Home::open_dir(dir, clock, &mut |_| {})?;
        home.store.create_resident(first)?;
        Ok(home)
    }

    /// Opens a home, creating an empty one (no resident) if there is none.
    pub fn open_or_create(dir: &Path, clock: Clock, events: &mut dyn FnMut(OpenEvent)) -> Result<Home> {
        private::create_dir(dir).map_err(|source| HomeError::Io { path: dir.to_owned(), source })?;
        Home::open_dir(dir, clock, events)
    }

    /// Opens an existing home; a home of domicile 0.1 is upgraded first
    /// (see [`Store::upgrade_single_database`]), telling `events`.
    pub fn open(dir: &Path, clock: Clock, events: &mut dyn FnMut(OpenEvent)) -> Result<Home> {
        if !is_home(dir) {
            return Err(HomeError::NoHome(dir.to_owned()));
        }
        Home::open_dir(dir, clock, events)
    }

    fn open_dir(dir: &Path, clock: Clock, events: &mut dyn FnMut(OpenEvent)) -> Result<Home> {
        match private::tighten(dir).map_err(|source| HomeError::Io { path: dir.to_owned(), source })? {
            0 => {}
            entries => events(OpenEvent::Tightened { entries }),
        }
        let store = Store::open(&dir.join("spaces"), Arc::new(Vocabulary::builtin()))?;
        let legacy = dir.join(LEGACY_STORE);
        if legacy.exists() {
            events(OpenEvent::UpgradeStarted);
            let report = store
                .upgrade_single_database(&legacy, &mut |i, total| {
                    events(OpenEvent::MovingResident { index: i + 1, total })
                })
                .map_err(|source| HomeError::Upgrade { path: legacy.clone(), source })?;
            events(OpenEvent::Upgraded(report));
        }
        // Accounts are read once and shared by every front-end of this
        // process (the store's lock makes it the only one).
        let accounts = Accounts::open(dir.join("accounts.json"))?;
        Ok(Home {
            dir: dir.to_owned(),
            store,
            accounts,
            clock,
            runtime: OnceLock::new(),
            in_flight: Default::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn trust_path(&self) -> PathBuf {
        self.dir.join("trust.json")
    }

    pub fn catalogues_path(&self) -> PathBuf {
        self.dir.join("catalogues.json")
    }

    pub fn accounts_path(&self) -> PathBuf {
        self.dir.join("accounts.json")
    }

    pub fn trust(&self) -> Result<TrustStore> {
        Ok(TrustStore::open(self.trust_path())?)
    }

    pub fn catalogue_sources(&self) -> Result<CatalogueSources> {
        Ok(CatalogueSources::open(self.catalogues_path())?)
    }

    /// The resident an operation acts for: the one named, or the only one.
    pub fn resident(&self, name: Option<&str>) -> Result<ResidentSpace> {
        if let Some(name) = name {
            let name: ResidentName = name.parse().map_err(|e| HomeError::BadInput(format!("{e}")))?;
            return Ok(self.store.resident(&name)?);
        }
        let residents = self.store.residents()?;
        match residents.as_slice() {
            [only] => Ok(self.store.resident(only)?),
            [] => Err(HomeError::NoResidentYet),
            _ => Err(HomeError::WhichResident(residents.iter().map(|r| r.to_string()).collect())),
        }
    }

    /// The app runtime, started on first use (it owns a wasmtime engine).
    pub fn runtime(&self) -> Result<&Arc<Runtime>> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        self.start_runtime(self.runtime_config()?)
    }

    /// Starts the app runtime of `domicile dev`: the one that offers its
    /// runner the project's `sources` (and so accepts a runner). Must come
    /// before anything else starts the runtime.
    pub fn start_development_runtime(&self, sources: domicile_host::DevSources) -> Result<&Arc<Runtime>> {
        if self.runtime.get().is_some() {
            return Err(HomeError::BadInput("the home's runtime was started before the development one".into()));
        }
        let mut config = self.runtime_config()?;
        config.dev_sources = Some(sources);
        self.start_runtime(config)
    }

    fn start_runtime(&self, config: domicile_host::RuntimeConfig) -> Result<&Arc<Runtime>> {
        let rt = Arc::new(Runtime::new(config)?);
        Ok(self.runtime.get_or_init(|| rt))
    }
}
