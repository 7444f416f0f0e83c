//! `domicile aggregator keygen|serve`: one of a campaign's two
//! aggregators, run by its organisation as a server of its own (its own
//! store and key; no home).

use std::path::PathBuf;

use anyhow::{Context, Result};
use domicile_aggregator::{ServeOptions, Serving};
use domicile_campaign::{AggregatorKeys, Campaign};
use serde_json::json;

use crate::answer::say;
use crate::verbs::campaigns::{read, signature_of};

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum AggregatorCommand {
    /// Make an aggregator's keys: PREFIX.secret (yours alone), and the two public keys for the campaign's file (the
    /// HPKE key residents' shares are encrypted to, the key the result is signed with).
    Keygen {
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Serve as a campaign's leader (takes the residents' reports) or helper (answers the leader only).
    Serve(Box<ServeArgs>),
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ServeArgs {
    /// `leader` or `helper`.
    #[arg(long, value_parser = ["leader", "helper"])]
    pub role: String,
    /// The campaign's file (its signature beside it, FILE.sig).
    #[arg(long, value_name = "FILE")]
    pub campaign: PathBuf,
    /// The organiser's public key (hexadecimal, or a .pub file): the campaign must be signed by it.
    #[arg(long, value_name = "KEY")]
    pub organiser: String,
    /// This aggregator's secret key, from `domicile aggregator keygen`.
    #[arg(long, value_name = "FILE")]
    pub secret: PathBuf,
    /// The verification key the two aggregators share: 64 hexadecimal characters.
    #[arg(long, value_name = "FILE")]
    pub verify_key: PathBuf,
    /// The token the leader shows the helper (the same file for both).
    #[arg(long, value_name = "FILE")]
    pub peer_token: PathBuf,
    /// The leader's: where the helper answers.
    #[arg(long, value_name = "URL")]
    pub helper: Option<String>,
    /// The leader's: the attester key of a node whose residents' reports it takes (`domicile campaign attester`
    /// on that node; hexadecimal). Repeat it for each node.
    #[arg(long = "attester", value_name = "KEY")]
    pub attesters: Vec<String>,
    /// This aggregator's store (a directory of its own).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: String,
}

/// A small text file (a key, a signature, a token), trimmed.
fn read_text(path: &std::path::Path) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(path)?).trim().to_owned())
}

pub async fn run(command: &AggregatorCommand, json: bool) -> Result<()> {
    match command {
        AggregatorCommand::Keygen { out } => keygen(out, json),
        AggregatorCommand::Serve(args) => serve(args).await,
    }
}

fn keygen(out: &std::path::Path, json: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let keys = AggregatorKeys::generate();
    let mut path = out.as_os_str().to_owned();
    path.push(".secret");
    let path = PathBuf::from(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot make {} (it must not exist yet)", path.display()))?;
    file.write_all(format!("{}\n{}\n", keys.secret, keys.result_secret).as_bytes())?;
    let answer = json!({ "public_key": keys.public, "result_key": keys.result_public, "secret_key_file": path });
    say(json, &answer, |_| {
        format!(
            "secret keys in {} (keep them); for the campaign's file: hpke_public_key {}, result_key {}",
            path.display(),
            keys.public,
            keys.result_public
        )
    })
}

async fn serve(args: &ServeArgs) -> Result<()> {
    let organiser = domicile_package::PublicKey::from_text_or_file(&args.organiser)?;
    let organiser = domicile_campaign::VerifyingKey::from_bytes(&organiser.to_bytes())?;
    let bytes = read(&args.campaign)?;
    let signature = read_text(&signature_of(&args.campaign, None))?;
    let campaign = Campaign::open(&bytes, &signature, &[organiser])?;
    let verify_key: [u8; 32] = hex::decode(read_text(&args.verify_key)?)
        .ok()
        .and_then(|k| k.try_into().ok())
        .context("the verification key is not 64 hexadecimal characters")?;
    let serving = match (args.role.as_str(), &args.helper) {
        ("leader", None) => anyhow::bail!("a leader is told where its helper answers: --helper URL"),
        ("leader", Some(_)) if args.attesters.is_empty() => anyhow::bail!(
            "a leader takes only the reports of nodes it trusts: --attester KEY for each (`domicile campaign attester` on the node)"
        ),
        ("leader", Some(helper)) => {
            for key in &args.attesters {
                let valid = hex::decode(key).is_ok_and(|k| k.len() == 32);
                anyhow::ensure!(valid, "attester key `{key}` is not 64 hexadecimal characters");
            }
            Serving::Leader { helper: helper.clone(), attesters: args.attesters.clone() }
        }
        _ => Serving::Helper,
    };
    let secrets = read_text(&args.secret)?;
    let (secret, result_secret) = secrets
        .split_once('\n')
        .map(|(hpke, result)| (hpke.trim().to_owned(), result.trim().to_owned()))
        .context("the secret key file has two lines (`domicile aggregator keygen` writes it)")?;
    let options = ServeOptions {
        serving,
        store: args.store.clone(),
        campaign,
        secret,
        result_secret,
        verify_key,
        peer_token: read_text(&args.peer_token)?,
    };
    let listener =
        tokio::net::TcpListener::bind(&args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    println!("domicile aggregator: serving http://{}", listener.local_addr()?);
    domicile_aggregator::serve(options, listener).await?;
    Ok(())
}
