//! The command-line advice added to an error: the libraries say what is
//! wrong, the CLI says which command to run next (the web UI says it in
//! its own words).

use domicile_home::{AccountError, HomeError};
use domicile_host::HostError;
use domicile_manifest::World;
use domicile_package::{CatalogueError, KeyError, PackageError, TrustError};
use domicile_store::StoreError;

/// The advice for the first error of the chain that has one.
fn hint(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        None.or_else(|| cause.downcast_ref::<HomeError>().and_then(home))
            .or_else(|| cause.downcast_ref::<StoreError>().and_then(store))
            .or_else(|| cause.downcast_ref::<HostError>().and_then(host))
            .or_else(|| cause.downcast_ref::<PackageError>().and_then(package))
            .or_else(|| cause.downcast_ref::<CatalogueError>().and_then(catalogue))
            .or_else(|| cause.downcast_ref::<KeyError>().and_then(key))
            .or_else(|| cause.downcast_ref::<TrustError>().and_then(trust))
            .or_else(|| cause.downcast_ref::<AccountError>().and_then(account))
    })
}

// Transparent wrappers do not show their inner error in the chain: each
// looks inside its own.

fn home(e: &HomeError) -> Option<String> {
    match e {
        HomeError::NoHome(dir) => {
            Some(format!("create one with `domicile --home {} init`, or try `domicile demo`", dir.display()))
        }
        HomeError::NoResidentYet => Some("add one with `domicile resident add NAME`".into()),
        HomeError::WhichResident(_) => Some("pass --resident NAME".into()),
        HomeError::Store(e) => store(e),
        HomeError::Host(e) => host(e),
        HomeError::Package(e) => package(e),
        HomeError::Catalogue(e) => catalogue(e),
        HomeError::Key(e) => key(e),
        HomeError::Trust(e) => trust(e),
        HomeError::Account(e) => account(e),
        _ => None,
    }
}

fn store(e: &StoreError) -> Option<String> {
    match e {
        StoreError::UnknownResident(_) => Some("list them with `domicile resident list`".into()),
        StoreError::UnknownApp(_) => Some("see `domicile apps`".into()),
        _ => None,
    }
}

fn host(e: &HostError) -> Option<String> {
    match e {
        HostError::AlreadyInstalled { app, .. } => Some(format!("`domicile uninstall {app}`")),
        HostError::WrongWorld { app, actual } => {
            let verb = if *actual == World::Service { "run" } else { "import" };
            Some(format!("use `domicile {verb} {app}`"))
        }
        HostError::Trap { app, logged, .. } if *logged > 0 => Some(format!("see `domicile logs --app {app}`")),
        HostError::Held { app, .. } => {
            Some(format!("`domicile uninstall {app}`, or keep it with `domicile enable {app}`"))
        }
        HostError::Store(e) => store(e),
        HostError::Package(e) => package(e),
        _ => None,
    }
}

fn package(e: &PackageError) -> Option<String> {
    match e {
        PackageError::NotAPackage => Some("build one with `domicile pack`".into()),
        PackageError::UntrustedPublisher(key) => {
            Some(format!("if you trust this publisher, run `domicile trust add {key}`"))
        }
        _ => None,
    }
}

fn catalogue(e: &CatalogueError) -> Option<String> {
    match e {
        CatalogueError::NotACatalogue(_) => Some("build one with `domicile catalogue build`".into()),
        CatalogueError::UntrustedKey(key) => {
            Some(format!("if you trust it, run `domicile trust add {key} --role catalogue`"))
        }
        CatalogueError::NotInCatalogues { .. } => Some("see `domicile catalogue list`".into()),
        _ => None,
    }
}

fn key(e: &KeyError) -> Option<String> {
    match e {
        KeyError::BadPublicKey(_) | KeyError::BadSecretKey { .. } => Some("`domicile keygen` writes a key pair".into()),
        KeyError::Io { .. } => None,
    }
}

fn trust(e: &TrustError) -> Option<String> {
    matches!(e, TrustError::UnknownKey(_)).then(|| "see `domicile trust list`".into())
}

fn account(e: &AccountError) -> Option<String> {
    matches!(e, AccountError::Corrupt { .. }).then(|| "`domicile resident password NAME` sets a new password".into())
}

/// The one line `domicile` prints for an error.
pub fn render(e: &anyhow::Error) -> String {
    // Errors quote what apps and files said: escaped like any such text.
    let line = crate::terminal::safe(&format!("{e:#}").replace('\n', " ")).into_owned();
    match hint(e) {
        Some(advice) => format!("{line}; {advice}"),
        None => line,
    }
}
