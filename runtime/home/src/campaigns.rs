//! The home's campaigns: questions its residents may answer together (see
//! `domicile_campaign`). Each is kept as its organiser signed it,
//! `HOME/campaigns/ID.json` with `ID.sig`, and its signature is checked
//! again at every read against the keys the home trusts for campaigns
//! now: a campaign whose organiser's key was revoked is no longer shown
//! as one to join.

use std::path::PathBuf;

use domicile_campaign::Campaign;
use domicile_package::Role;
use serde::Serialize;

use crate::{Home, HomeError, Result};

/// The largest campaign file read (the campaign crate refuses larger).
const MAX_CAMPAIGN_FILE: u64 = domicile_campaign::MAX_CAMPAIGN_BYTES as u64;

/// A campaign of the home as it reads now.
#[derive(Debug, Clone, Serialize)]
pub struct ListedCampaign {
    pub id: String,
    /// The campaign, when its signature verifies with a key trusted for
    /// campaigns now.
    pub campaign: Option<Campaign>,
    /// Why it is not shown, when it is not.
    pub refused: Option<String>,
}

impl Home {
    fn campaigns_dir(&self) -> PathBuf {
        self.dir().join("campaigns")
    }

    /// The keys this home trusts for campaigns now.
    fn campaign_keys(&self) -> Result<Vec<domicile_campaign::VerifyingKey>> {
        Ok(self
            .trust()?
            .keys()
            .iter()
            .filter(|k| k.trusted_as(Role::Campaign))
            .filter_map(|k| domicile_campaign::VerifyingKey::from_bytes(&k.key.to_bytes()).ok())
            .collect())
    }

    /// Adds a campaign its organiser signed (`signature`: hexadecimal),
    /// once it verifies with a key the home trusts for campaigns and its
    /// terms are valid; a campaign of the same id is replaced.
    pub fn add_campaign(&self, bytes: &[u8], signature: &str) -> Result<Campaign> {
        let campaign = Campaign::open(bytes, signature, &self.campaign_keys()?)?;
        let dir = self.campaigns_dir();
        crate::private::create_dir(&dir).map_err(|source| HomeError::Io { path: dir.clone(), source })?;
        let write = |name: String, content: &[u8]| {
            let path = dir.join(name);
            domicile_package::write_atomically(&path, content).map_err(|source| HomeError::Io { path, source })
        };
        write(format!("{}.sig", campaign.id), signature.trim().as_bytes())?;
        write(format!("{}.json", campaign.id), bytes)?;
        Ok(campaign)
    }

    /// Every campaign of the home, in the order of their ids, each checked
    /// again against the keys trusted for campaigns now.
    pub fn campaigns(&self) -> Result<Vec<ListedCampaign>> {
        let dir = self.campaigns_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(HomeError::Io { path: dir, source }),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_owned))
            .collect();
        ids.sort();
        let keys = self.campaign_keys()?;
        Ok(ids
            .into_iter()
            .map(|id| match self.read_campaign(&id, &keys) {
                Ok(campaign) => ListedCampaign { id, campaign: Some(campaign), refused: None },
                Err(e) => ListedCampaign { id, campaign: None, refused: Some(e.to_string()) },
            })
            .collect())
    }

    /// The campaign `id`, if the home has it and its signature verifies
    /// with a key trusted for campaigns now.
    pub fn campaign(&self, id: &str) -> Result<Campaign> {
        let known = domicile_campaign::is_campaign_id(id) && self.campaigns_dir().join(format!("{id}.json")).is_file();
        if !known {
            return Err(HomeError::BadInput(format!(
                "this home has no campaign `{id}`: `domicile campaigns` lists them"
            )));
        }
        self.read_campaign(id, &self.campaign_keys()?)
    }

    fn read_campaign(&self, id: &str, keys: &[domicile_campaign::VerifyingKey]) -> Result<Campaign> {
        let read = |name: String| {
            let path = self.campaigns_dir().join(name);
            domicile_package::files::read_regular(&path, MAX_CAMPAIGN_FILE)
                .map_err(|source| HomeError::Io { path, source })
        };
        let bytes = read(format!("{id}.json"))?;
        let signature = String::from_utf8_lossy(&read(format!("{id}.sig"))?).into_owned();
        let campaign = Campaign::open(&bytes, &signature, keys)?;
        if campaign.id != id {
            return Err(HomeError::BadInput(format!("the file of campaign `{id}` holds campaign `{}`", campaign.id)));
        }
        Ok(campaign)
    }
}
