//! The operator's operations on residents: adding one (with their sign-in
//! password), passwords, sign-in switches, quotas.

use domicile_store::{Quota, ResidentName, Usage};

use crate::{check_password, new_password, Home, Result};

/// A new password: generated (and handed back once), or chosen.
pub enum Password {
    Generate,
    Given(String),
}

impl Password {
    /// The password, checked; and whether it was generated.
    fn resolve(self) -> Result<(String, bool)> {
        match self {
            Password::Generate => Ok((new_password(), true)),
            Password::Given(password) => {
                check_password(&password)?;
                Ok((password, false))
            }
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedResident {
    pub name: ResidentName,
    /// The generated password, to hand to the resident (shown once).
    pub password: Option<String>,
}

impl Home {
    /// Adds a resident: an empty space and a password to sign in with. The
    /// password is checked before anything is created, and if it cannot be
    /// stored the space is removed again: no resident nobody can sign in as.
    /// Hashes the password (argon2, tens of milliseconds): call it off an
    /// async runtime's threads.
    pub fn add_resident(&self, name: &ResidentName, password: Password) -> Result<AddedResident> {
        let (password, generated) = password.resolve()?;
        drop(self.store.create_resident(name)?);
        if let Err(e) = self.accounts.set_password(name, &password) {
            if let Err(undo) = self.store.remove_resident(name) {
                tracing::error!(error = %undo, "a resident whose account could not be written could not be removed");
            }
            return Err(e.into());
        }
        Ok(AddedResident { name: name.clone(), password: generated.then_some(password) })
    }

    /// A new password for an existing resident (the old one stops working);
    /// returns it when it was generated. Hashes: off async threads.
    pub fn set_password(&self, name: &ResidentName, password: Password) -> Result<Option<String>> {
        self.require_resident(name)?;
        let (password, generated) = password.resolve()?;
        self.accounts.set_password(name, &password)?;
        Ok(generated.then_some(password))
    }

    /// Deletes a resident: their space (its directory goes, freeing the
    /// disk) and their account. Refused while their space is in use (an
    /// app running, an export being written).
    pub fn remove_resident(&self, name: &ResidentName) -> Result<()> {
        self.store.remove_resident(name)?;
        if self.accounts.has_account(name) {
            self.accounts.remove(name)?;
        }
        // Their apps' scratch directories (`scratch/RESIDENT/APP`) go too.
        let scratch = self.dir.join("scratch").join(name.as_str());
        match std::fs::remove_dir_all(&scratch) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(crate::HomeError::Io { path: scratch, source }),
        }
    }

    /// Lets a resident sign in, or stops them (their data is untouched).
    pub fn set_sign_in(&self, name: &ResidentName, enabled: bool) -> Result<()> {
        self.require_resident(name)?;
        Ok(self.accounts.set_disabled(name, !enabled)?)
    }

    /// Sets a resident's quota; returns their usage and the quota.
    pub fn set_quota(&self, name: &ResidentName, quota: Option<Quota>) -> Result<(Usage, Quota)> {
        let space = self.store.resident(name)?;
        if let Some(quota) = quota {
            space.set_quota(&quota)?;
        }
        Ok((space.usage()?, space.quota()?))
    }

    pub(crate) fn require_resident(&self, name: &ResidentName) -> Result<()> {
        if self.store.has_resident(name) {
            Ok(())
        } else {
            Err(domicile_store::StoreError::UnknownResident(name.to_string()).into())
        }
    }
}

impl Home {
    /// A new API token for a resident: its id and label, and the secret
    /// (shown once; only its hash is kept).
    pub fn create_token(&self, name: &ResidentName, label: &str) -> Result<(crate::TokenInfo, String)> {
        let label: String = label.chars().filter(|c| !c.is_control()).take(100).collect();
        Ok(self.accounts.create_token(name, &label, self.now_ms())?)
    }

    /// Revokes a resident's API token; false when they have none by that id.
    pub fn revoke_token(&self, name: &ResidentName, id: &str) -> Result<bool> {
        Ok(self.accounts.revoke_token(name, id)?)
    }

    /// A new operator token (the previous one stops working); shown once.
    pub fn new_operator_token(&self) -> Result<String> {
        Ok(self.accounts.new_operator_token()?)
    }
}

#[cfg(test)]
mod tests {
    use domicile_host::Clock;

    use super::*;
    use crate::HomeError;

    #[test]
    fn a_removed_resident_leaves_no_space_account_or_scratch_and_a_failed_add_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path(), &"me".parse().unwrap(), Clock::Fixed(1)).unwrap();
        let ada: ResidentName = "ada".parse().unwrap();
        let added = home.add_resident(&ada, Password::Generate).unwrap();
        assert!(home.accounts().sign_in("ada", added.password.as_deref().unwrap()).is_some());
        let scratch = dir.path().join("scratch/ada/org.example.app");
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::write(scratch.join("notes"), "x").unwrap();

        home.remove_resident(&ada).unwrap();
        assert!(!home.store().has_resident(&ada));
        assert!(!home.accounts().has_account(&ada));
        assert!(!dir.path().join("scratch/ada").exists());
        assert!(!dir.path().join("spaces/residents/ada").exists());

        // A weak password is refused before anything is created.
        let bob: ResidentName = "bob".parse().unwrap();
        assert!(matches!(home.add_resident(&bob, Password::Given("short".into())), Err(HomeError::Account(_))));
        assert!(!home.store().has_resident(&bob));
        // An account file that cannot be written: the space is rolled back.
        std::fs::remove_file(dir.path().join("accounts.json")).unwrap();
        std::fs::create_dir(dir.path().join("accounts.json")).unwrap();
        assert!(home.add_resident(&bob, Password::Given("a-long-enough-one".into())).is_err());
        assert!(!home.store().has_resident(&bob), "no resident nobody can sign in as");
    }
}
