//! The list of what the service layer offers, for the front-ends to
//! cover: every operation here is reachable from the CLI and from the HTTP
//! API (a test drives both and fails on a gap), and the ones below that
//! only one front-end has are named with the reason.

/// A resident's or an operator's operation on a home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    // The operator's.
    AddResident,
    RemoveResident,
    SetPassword,
    SetSignIn,
    SetQuota,
    TrustKey,
    RevokeKey,
    AddCatalogueSource,
    AddCampaign,
    ShowCampaignAttester,
    Restore,
    NewOperatorToken,
    // A resident's.
    Install,
    Update,
    Grant,
    Revoke,
    Uninstall,
    KeepHeldApp,
    Run,
    Import,
    PutDocument,
    DeleteDocument,
    ApproveOutbox,
    DenyOutbox,
    JoinCampaign,
    LeaveCampaign,
    FetchCampaignResult,
    Export,
    CreateToken,
    RevokeToken,
}

impl Operation {
    pub const ALL: &'static [Operation] = &[
        Operation::AddResident,
        Operation::RemoveResident,
        Operation::SetPassword,
        Operation::SetSignIn,
        Operation::SetQuota,
        Operation::TrustKey,
        Operation::RevokeKey,
        Operation::AddCatalogueSource,
        Operation::AddCampaign,
        Operation::ShowCampaignAttester,
        Operation::Restore,
        Operation::NewOperatorToken,
        Operation::Install,
        Operation::Update,
        Operation::Grant,
        Operation::Revoke,
        Operation::Uninstall,
        Operation::KeepHeldApp,
        Operation::Run,
        Operation::Import,
        Operation::PutDocument,
        Operation::DeleteDocument,
        Operation::ApproveOutbox,
        Operation::DenyOutbox,
        Operation::JoinCampaign,
        Operation::LeaveCampaign,
        Operation::FetchCampaignResult,
        Operation::Export,
        Operation::CreateToken,
        Operation::RevokeToken,
    ];
}
