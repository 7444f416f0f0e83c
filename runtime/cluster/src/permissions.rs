//! The NATS permissions a node needs, and no more: the JetStream API of
//! domicile's own buckets, object stores and stream, their subjects, and
//! replies to its own inbox. An operator gives them to each node's NATS
//! user (`nats/domicile-node-permissions.conf`, kept equal to what
//! [`node_permissions`] writes by a test), so that a node's credentials
//! reach nothing else on the server, and cannot delete what they use.

use crate::{log, moves, shared};

/// domicile's key-value buckets and object stores.
pub(crate) const BUCKETS: [&str; 9] = [
    crate::NODES,
    crate::PLACEMENT,
    crate::SESSIONS,
    crate::TOKENS,
    crate::OPERATOR,
    crate::ACCOUNTS,
    moves::MOVES,
    shared::SHARED,
    crate::log_ends::LOG_ENDS,
];
const OBJECT_STORES: [&str; 2] = [shared::CATALOGUE_FILES, log::OBJECTS];

/// Every JetStream stream domicile uses: the buckets' (`KV_`), the object
/// stores' (`OBJ_`) and the residents' logs.
pub fn streams() -> Vec<String> {
    let mut streams: Vec<String> = BUCKETS.iter().map(|b| format!("KV_{b}")).collect();
    streams.extend(OBJECT_STORES.iter().map(|o| format!("OBJ_{o}")));
    streams.push(log::STREAM.to_owned());
    streams
}

/// The subjects a node publishes to, beyond the JetStream API.
fn subjects() -> Vec<String> {
    let mut subjects: Vec<String> = BUCKETS.iter().map(|b| format!("$KV.{b}.>")).collect();
    subjects.extend(OBJECT_STORES.iter().map(|o| format!("$O.{o}.>")));
    subjects.push(log::SUBJECTS.to_owned());
    subjects
}

/// The `DOMICILE_NODE` permissions block of a NATS server configuration.
pub fn node_permissions() -> String {
    let mut allow = vec!["$JS.API.INFO".to_owned()];
    for stream in streams() {
        allow.extend([
            format!("$JS.API.STREAM.*.{stream}"),
            format!("$JS.API.STREAM.MSG.GET.{stream}"),
            format!("$JS.API.DIRECT.GET.{stream}"),
            format!("$JS.API.DIRECT.GET.{stream}.>"),
            format!("$JS.API.CONSUMER.*.{stream}"),
            format!("$JS.API.CONSUMER.*.{stream}.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
            format!("$JS.ACK.{stream}.>"),
            format!("$JS.FC.{stream}.>"),
        ]);
    }
    allow.extend(subjects());
    let list = |items: &[String]| items.iter().map(|s| format!("      \"{s}\"\n")).collect::<String>();
    format!(
        "# The NATS permissions of a domicile node's user: the JetStream API of
# domicile's own buckets, object stores and stream, their subjects, and
# replies to its inbox; nothing else on the server, and no deleting a
# stream. Include this file in nats-server.conf and give each node's
# user `permissions: $DOMICILE_NODE` (see the operator's guide).
# Written by domicile_cluster::node_permissions(); a test keeps it equal.
DOMICILE_NODE = {{
  publish: {{
    allow: [
{}    ]
    deny: [
      \"$JS.API.STREAM.DELETE.>\"
    ]
  }}
  subscribe: {{
    allow: [
      \"_INBOX.>\"
    ]
  }}
}}
",
        list(&allow)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_permissions_are_those_the_code_needs() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/nats/domicile-node-permissions.conf");
        let written = super::node_permissions();
        if std::env::var_os("DOMICILE_WRITE_NATS_PERMISSIONS").is_some() {
            std::fs::write(path, &written).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == written,
            "{path} differs from what the code needs: run `DOMICILE_WRITE_NATS_PERMISSIONS=1 cargo test -p domicile-cluster` and commit it"
        );
    }
}
