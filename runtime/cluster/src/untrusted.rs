//! Every decoder of what a node reads from NATS's buckets, behind one
//! door, so that the fuzz targets (`runtime/fuzz`) meet each of them as a
//! node does: the seal first, then the record, then the checks of what it
//! names. The fuzz target seals its inputs with a key of its own, as the
//! catalogue target signs its indexes, so that mutations reach past the
//! MAC into the decoders.

use crate::seal::Seal;
use crate::{moves, shared, ClusterKey, NodeName, NodeRecord, PlacementRecord, SessionRecord};
use domicile_store::ResidentName;

/// The buckets whose entries a node decodes, in the order the fuzz target
/// picks them by its input's first byte.
pub const BUCKETS: [&str; 9] = crate::permissions::BUCKETS;

/// `value`, sealed with `key` for `entry` of `bucket`, as a node writes it.
pub fn seal_entry(key: &ClusterKey, bucket: &str, entry: &str, value: &[u8]) -> Vec<u8> {
    Seal::new(key).seal(bucket, entry, value, crate::now_ms())
}

/// Decodes `sealed`, read under `entry` of `bucket`, as a node would
/// before acting on it: a summary of what it is, or why it is refused.
pub fn open_entry(key: &ClusterKey, bucket: &str, entry: &str, sealed: &[u8]) -> Result<String, String> {
    let opened = Seal::new(key).open(bucket, entry, sealed).map_err(str::to_owned)?;
    let value = opened.value.as_slice();
    let json = |what: &str| -> Result<serde_json::Value, String> {
        serde_json::from_slice(value).map_err(|e| format!("{what}: {e}"))
    };
    match bucket {
        crate::NODES => {
            entry.parse::<NodeName>().map_err(|e| e.to_string())?;
            let record: NodeRecord = serde_json::from_slice(value).map_err(|e| e.to_string())?;
            record.check()?;
            Ok(format!("node at {}", record.advertise.len()))
        }
        crate::PLACEMENT => {
            entry.parse::<ResidentName>().map_err(|e| e.to_string())?;
            let record: PlacementRecord = serde_json::from_slice(value).map_err(|e| e.to_string())?;
            Ok(format!("placed on {}", record.node))
        }
        crate::SESSIONS => {
            let session: SessionRecord = serde_json::from_slice(value).map_err(|e| e.to_string())?;
            Ok(format!("session of {}", session.resident))
        }
        crate::TOKENS => {
            let name = std::str::from_utf8(value).map_err(|e| e.to_string())?;
            name.parse::<ResidentName>().map(|r| format!("token of {r}")).map_err(|e| e.to_string())
        }
        moves::MOVES => {
            let record: moves::MoveRecord = serde_json::from_slice(value).map_err(|e| e.to_string())?;
            Ok(format!("move to {}", record.to))
        }
        shared::SHARED if shared::SharedCampaign::id_of(entry).is_some() => {
            let id = shared::SharedCampaign::id_of(entry).unwrap_or_default();
            let campaign = shared::SharedCampaign::decode(id, value)?;
            Ok(format!("campaign {} of {} bytes", campaign.id, campaign.campaign.len()))
        }
        shared::SHARED => {
            json("a shared setting")?;
            let listed: Vec<shared::SharedCatalogue> = serde_json::from_slice(value).map_err(|e| e.to_string())?;
            let checked = listed.iter().filter(|c| c.check().is_ok()).count();
            Ok(format!("{checked} of {} catalogues", listed.len()))
        }
        crate::log_ends::LOG_ENDS => {
            let end = crate::log_ends::LogEnd::decode(value)?;
            Ok(format!("log ends at {}", end.position))
        }
        // The operator's keyed hash and the accounts' records are bytes
        // compared or handed to the accounts as they are.
        _ => Ok(format!("{} bytes", value.len())),
    }
}
