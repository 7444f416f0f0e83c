//! `domicile campaigns` and `domicile campaign add|show|sign`: the
//! campaigns of a home (questions its residents may answer together, of
//! which only an aggregate comes out), what joining one means, and, for an
//! organiser, signing one.

use std::path::PathBuf;

use anyhow::{Context, Result};
use domicile_campaign::Campaign;
use domicile_home::Home;
use domicile_store::{OutboxStatus, ResidentSpace};
use serde_json::json;

use crate::answer::{lines, say};
use crate::terminal::safe;

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum CampaignCommand {
    /// Add a campaign its organiser signed (FILE, with its signature in FILE.sig or --signature), once a key this home trusts for campaigns signed it.
    Add {
        file: PathBuf,
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
    },
    /// What joining campaign ID means: who asks and why, which app computes what, the exact bounds, who aggregates, what leaves and what comes back.
    Show { id: String },
    /// Join campaign ID: its app computes your answer inside your space, and two shares of it (each meaningless
    /// alone) go to its two aggregators, attested by this home as your one report.
    Join {
        id: String,
        /// Your neighbourhood, when the campaign gives its result per neighbourhood (`campaign show` says which
        /// kind: a postcode or an IRIS code); it goes with the shares, readable by both aggregators.
        #[arg(long, value_name = "CODE")]
        neighbourhood: Option<String>,
    },
    /// Leave campaign ID before its deadline: your report is withdrawn, and the aggregate will not count it.
    Leave { id: String },
    /// Bring campaign ID's result into your space, once both aggregators signed it (a document your apps may read).
    Result { id: String },
    /// This home's attester key: the campaign's leader is told to trust it (`--attester KEY`) to take its residents' reports.
    Attester,
    /// Sign a campaign file, as its organiser: writes FILE.sig with a key from `domicile keygen`.
    Sign {
        file: PathBuf,
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

/// A campaign's file, or its signature's (a regular file, no larger than a
/// campaign may be).
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    domicile_package::files::read_regular(path, domicile_campaign::MAX_CAMPAIGN_BYTES as u64)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Where a campaign's signature is: `signature`, or FILE.sig beside it.
pub(crate) fn signature_of(file: &std::path::Path, signature: Option<PathBuf>) -> PathBuf {
    signature.unwrap_or_else(|| {
        let mut sig = file.as_os_str().to_owned();
        sig.push(".sig");
        PathBuf::from(sig)
    })
}

/// `domicile campaigns`.
pub fn list(home: &Home, json: bool) -> Result<()> {
    let listed = home.campaigns()?;
    say(json, &listed, |_| {
        let mut shown = Vec::new();
        for entry in &listed {
            match (&entry.campaign, &entry.refused) {
                (Some(c), _) => shown.push(format!(
                    "{}  asked by {} until {}\n    {}",
                    c.id,
                    safe(&c.organiser),
                    domicile_home::format_ms(c.deadline_ms),
                    safe(&c.purpose)
                )),
                (None, refused) => shown.push(format!(
                    "{}  not shown: {}",
                    entry.id,
                    refused.as_deref().unwrap_or("it does not verify")
                )),
            }
        }
        if shown.is_empty() {
            shown
                .push("no campaigns: an organiser's signed campaign is added with `domicile campaign add FILE`".into());
        } else {
            shown.push("\n`domicile campaign show ID` says what joining one means".into());
        }
        lines(shown)
    })
}

/// `domicile campaign add|show` (`sign` needs no home).
pub fn campaign(home: &Home, command: CampaignCommand, json: bool) -> Result<()> {
    match command {
        CampaignCommand::Add { file, signature } => {
            let bytes = read(&file)?;
            let signature = String::from_utf8_lossy(&read(&signature_of(&file, signature))?).into_owned();
            let campaign = home.add_campaign(&bytes, &signature)?;
            say(json, &json!({ "added": campaign.id }), |_| {
                format!(
                    "added campaign {}: `domicile campaign show {}` says what joining it means",
                    campaign.id, campaign.id
                )
            })
        }
        CampaignCommand::Show { id } => {
            let campaign = home.campaign(&id)?;
            say(json, &campaign, |c| lines(c.terms().iter().map(|t| safe(t).into_owned()).collect::<Vec<_>>()))
        }
        CampaignCommand::Attester => {
            let key = home.campaign_attester()?.public_key();
            say(json, &json!({ "attester": key }), |_| {
                format!(
                    "this home's attester key: {key}
the campaign's leader takes its residents' reports with `--attester {key}`"
                )
            })
        }
        CampaignCommand::Sign { .. } => unreachable!("signed without a home"),
        CampaignCommand::Join { .. } | CampaignCommand::Leave { .. } | CampaignCommand::Result { .. } => {
            unreachable!("a resident's")
        }
    }
}

impl CampaignCommand {
    /// Whether it acts on a resident's space (joining, leaving).
    pub fn is_residents(&self) -> bool {
        matches!(self, CampaignCommand::Join { .. } | CampaignCommand::Leave { .. } | CampaignCommand::Result { .. })
    }
}

/// `domicile campaign join|leave|result ID`, for a resident.
pub async fn participate(home: &Home, space: &ResidentSpace, command: CampaignCommand, json: bool) -> Result<()> {
    let (id, joining, neighbourhood) = match command {
        CampaignCommand::Join { id, neighbourhood } => (id, true, neighbourhood),
        CampaignCommand::Leave { id } => (id, false, None),
        CampaignCommand::Result { id } => {
            let doc = home.fetch_campaign_result(space, &id).await?;
            let answer = json!({ "doctype": domicile_home::RESULT_DOCTYPE, "id": doc.as_str() });
            return say(json, &answer, |_| {
                format!(
                    "the result of campaign {id}, signed by both aggregators, is in your space: `domicile docs {}`",
                    domicile_home::RESULT_DOCTYPE
                )
            });
        }
        _ => unreachable!("a home's command"),
    };
    let item = if joining {
        home.join_campaign(space, &id, neighbourhood.as_deref()).await?
    } else {
        home.leave_campaign(space, &id).await?
    };
    say(json, &item, |item| {
        let outcome = match (&item.status, joining) {
            (OutboxStatus::Sent { .. }, true) => {
                format!("joined campaign {id}: your report (two shares, either alone random) went to its leader")
            }
            (OutboxStatus::Sent { .. }, false) => {
                format!("left campaign {id}: your report is withdrawn, the aggregate will not count it")
            }
            (OutboxStatus::Denied { .. }, false) => {
                format!("left campaign {id}: your report had not been delivered, and now never will be")
            }
            _ => format!("campaign {id}: outbox item #{} could not be sent yet", item.id),
        };
        format!(
            "{outcome}
    outbox #{}  to {}",
            item.id,
            safe(&item.destination)
        )
    })
}

/// `domicile campaign sign FILE --key KEY`.
pub fn sign(file: &std::path::Path, key: &std::path::Path, json: bool) -> Result<()> {
    let campaign: Campaign =
        serde_json::from_slice(&read(file)?).with_context(|| format!("{} is not a campaign", file.display()))?;
    let key = domicile_package::SecretKey::load(key)?;
    let (bytes, signature) = campaign.sign_with(|message| key.sign(message))?;
    // What is signed is the campaign as written here (its canonical form).
    domicile_package::write_atomically(file, &bytes).with_context(|| format!("cannot write {}", file.display()))?;
    let sig = signature_of(file, None);
    domicile_package::write_atomically(&sig, signature.as_bytes())
        .with_context(|| format!("cannot write {}", sig.display()))?;
    let answer = json!({ "campaign": campaign.id, "signature": sig, "key": key.public().to_string() });
    say(json, &answer, |_| {
        format!(
            "signed campaign {} ({}): residents' homes trust {} for campaigns (`domicile trust add KEY --role campaign`) to add it",
            campaign.id,
            sig.display(),
            key.public()
        )
    })
}
