//! `domicile:app/dev-source`: the project's source files, handed by
//! `domicile dev` to the runner it builds once per Python or JavaScript
//! project, so that an edit runs without a new build (see `runtime/cli/src/develop/dev.wit`).
//!
//! Only a runtime made for `domicile dev` links this interface, and only
//! such a runtime accepts a component importing it: a runner package is
//! refused at install anywhere else, and a development home opened by any
//! other command cannot run one. The files are what `domicile dev` read
//! from the project, kept in memory; the guest gets no directory, only
//! these texts by name.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use wasmtime::component::Linker;

/// The interface's name as components import it.
pub(crate) const INTERFACE: &str = "domicile:app/dev-source@0.1.0";

/// Whether an import is this interface (of any version).
pub(crate) fn is_dev_source(import: &str) -> bool {
    import.starts_with("domicile:app/dev-source@")
}

/// The files the runner may read, by path relative to the project; shared
/// between `domicile dev` (which replaces them at each round) and the
/// runtime's linker.
#[derive(Clone, Debug, Default)]
pub struct DevSources(Arc<RwLock<BTreeMap<String, String>>>);

impl DevSources {
    /// Replaces every file: the next run reads these.
    pub fn replace(&self, files: BTreeMap<String, String>) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = files;
    }

    fn read(&self, path: &str) -> Option<String> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(path).cloned()
    }
}

/// Links `dev-source`, answering from `sources`; no state of the
/// invocation's is involved.
pub(crate) fn add_to_linker<T: 'static>(linker: &mut Linker<T>, sources: DevSources) -> wasmtime::Result<()> {
    linker.instance(INTERFACE)?.func_wrap("read", move |_, (path,): (String,)| Ok((sources.read(&path),)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_interface_is_named_with_the_version_of_the_wit_package() {
        let wit = include_str!("../../../wit/domicile.wit");
        let version = wit.lines().find_map(|l| l.strip_prefix("package domicile:app@")).unwrap();
        assert_eq!(super::INTERFACE, format!("domicile:app/dev-source@{}", version.trim_end_matches(';')));
        let dev = include_str!("../../cli/src/develop/dev.wit");
        assert!(dev.contains("interface dev-source") && dev.contains("read: func(path: string) -> option<string>"));
    }
}
