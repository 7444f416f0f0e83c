//! What a request that failed answers: an HTTP status and a JSON body
//! `{"error": "..."}` whose message says what was wrong and what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domicile_host::HostError;
use domicile_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first (or send an API token as `Authorization: Bearer ...`)")]
    SignInFirst,
    #[error("wrong name or password")]
    WrongCredentials,
    #[error("this request needs the operator's token as `Authorization: Bearer ...`")]
    NotOperator,
    #[error("the request lacks the X-CSRF-Token header of your session: reload the page and try again")]
    Csrf,
    /// Known who asks, and not theirs to ask.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    TooLarge(String),
    /// The app ran and failed, or hit a limit: the request was fine.
    #[error("{0}")]
    AppFailed(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::SignInFirst | ApiError::WrongCredentials | ApiError::NotOperator => StatusCode::UNAUTHORIZED,
            ApiError::Csrf | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::AppFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The message can name the resident's documents: log the kind only.
            tracing::error!(status = status.as_u16(), "request failed on the server's side");
        }
        let mut response = (status, axum::Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<domicile_cluster::ClusterError> for ApiError {
    fn from(e: domicile_cluster::ClusterError) -> Self {
        use domicile_cluster::ClusterError as C;
        match e {
            C::Taken { .. } | C::MoveUnderWay { .. } => ApiError::Conflict(e.to_string()),
            C::NotLive(_) => ApiError::BadRequest(e.to_string()),
            C::NotPlaced(_) => ApiError::NotFound(e.to_string()),
            C::Moved { .. }
            | C::Changed { .. }
            | C::MoveTimedOut { .. }
            | C::NotHolder { .. }
            | C::NoLiveNode
            | C::Connect { .. }
            | C::Nats { .. } => ApiError::Unavailable(format!("{e}; try again in a few seconds")),
            C::Corrupt { .. } | C::Access { .. } | C::Insecure { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownApp(_) | StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            StoreError::Limit(_) => ApiError::Conflict(e.to_string()),
            StoreError::ResidentExists(_) | StoreError::ResidentBusy(_) => ApiError::Conflict(e.to_string()),
            StoreError::UnknownResident(_) => ApiError::NotFound(e.to_string()),
            StoreError::NotShipped(_) | StoreError::SnapshotNotShipped(_) => ApiError::Unavailable(e.to_string()),
            StoreError::InUse(_)
            | StoreError::Sled(_)
            | StoreError::Io { .. }
            | StoreError::Corrupt(_)
            | StoreError::PublishInterrupted(_)
            | StoreError::ApplyInterrupted(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Store(e) => e.into(),
            HostError::Package(e) => e.into(),
            HostError::AppFailed { .. } | HostError::Trap { .. } | HostError::Limit { .. } => {
                ApiError::AppFailed(e.to_string())
            }
            HostError::Held { .. }
            | HostError::AlreadyInstalled { .. }
            | HostError::ChangedMeanwhile(_)
            | HostError::PublisherChanged { .. }
            | HostError::NotNewer { .. } => ApiError::Conflict(e.to_string()),
            // What the package or the request is: bad input.
            HostError::Manifest(_)
            | HostError::InvalidComponent(_)
            | HostError::WrongExports { .. }
            | HostError::ForbiddenImports { .. }
            | HostError::WrongWorld { .. }
            | HostError::DevRunner { .. }
            | HostError::OtherApp { .. }
            | HostError::WorldChanged { .. } => ApiError::BadRequest(e.to_string()),
            HostError::Engine(_) | HostError::Scratch(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<domicile_package::CatalogueError> for ApiError {
    fn from(e: domicile_package::CatalogueError) -> Self {
        use domicile_package::CatalogueError as C;
        match e {
            C::NotListed(_) | C::NotInCatalogues { .. } | C::UnknownVersion { .. } => ApiError::NotFound(e.to_string()),
            C::Io { .. } => ApiError::Internal(e.to_string()),
            // A catalogue the operator set up that no longer verifies, or
            // that lists what it cannot serve: the request was fine.
            C::NotACatalogue(_)
            | C::BadSignatureFile(_)
            | C::UntrustedKey(_)
            | C::RevokedKey(_)
            | C::BadSignature
            | C::Malformed(_)
            | C::Package { .. }
            | C::Manifest { .. }
            | C::DigestMismatch { .. }
            | C::NotTheListedApp { .. }
            | C::Conflict(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<domicile_package::PackageError> for ApiError {
    fn from(e: domicile_package::PackageError) -> Self {
        use domicile_package::PackageError as P;
        match e {
            P::NotAPackage
            | P::Malformed(_)
            | P::TooLarge { .. }
            | P::UntrustedPublisher(_)
            | P::BadSignature
            | P::WrongPublisher { .. } => ApiError::BadRequest(e.to_string()),
            P::RevokedPublisher(_) => ApiError::Conflict(e.to_string()),
        }
    }
}

impl From<domicile_package::TrustError> for ApiError {
    fn from(e: domicile_package::TrustError) -> Self {
        use domicile_package::TrustError as T;
        match e {
            T::Io { .. } | T::Corrupt { .. } => ApiError::Internal(e.to_string()),
            T::AlreadyTrusted(_) | T::AlreadyRevoked(_) => ApiError::Conflict(e.to_string()),
            T::UnknownKey(_) => ApiError::NotFound(e.to_string()),
        }
    }
}

impl From<domicile_package::KeyError> for ApiError {
    fn from(e: domicile_package::KeyError) -> Self {
        use domicile_package::KeyError as K;
        match e {
            K::BadPublicKey(_) | K::BadSecretKey { .. } => ApiError::BadRequest(e.to_string()),
            K::Io { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<domicile_home::HomeError> for ApiError {
    fn from(e: domicile_home::HomeError) -> Self {
        use domicile_home::HomeError as H;
        match e {
            H::Store(e) => e.into(),
            H::Host(e) => e.into(),
            H::Package(e) => e.into(),
            H::Catalogue(e) => e.into(),
            H::Trust(e) => e.into(),
            H::Key(e) => e.into(),
            H::Grant(e) => e.into(),
            H::Account(e) => e.into(),
            H::Egress(e) => e.into(),
            H::Manifest(_) | H::Campaign(_) | H::VersionOfAFile | H::BadInput(_) | H::WhichResident(_) => {
                ApiError::BadRequest(e.to_string())
            }
            H::OtherPublisher(_) => ApiError::Conflict(e.to_string()),
            H::NoResidentYet => ApiError::NotFound(e.to_string()),
            H::NoHome(_) | H::AlreadyAHome(_) | H::Io { .. } | H::Config { .. } | H::Upgrade { .. } => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<domicile_manifest::GrantError> for ApiError {
    fn from(e: domicile_manifest::GrantError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<domicile_manifest::NameError> for ApiError {
    fn from(e: domicile_manifest::NameError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<domicile_egress::EgressError> for ApiError {
    fn from(e: domicile_egress::EgressError) -> Self {
        use domicile_egress::EgressError as E;
        match e {
            E::Store(e) => e.into(),
            E::AlreadyDecided { .. } | E::NotDeclared { .. } | E::NotCampaigns { .. } => {
                ApiError::Conflict(e.to_string())
            }
            E::BadDestination { .. } | E::Delivery { .. } => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<domicile_home::AccountError> for ApiError {
    fn from(e: domicile_home::AccountError) -> Self {
        use domicile_home::AccountError as A;
        match e {
            A::WeakPassword => ApiError::BadRequest(e.to_string()),
            A::UnknownResident(_) => ApiError::NotFound(e.to_string()),
            A::Io { .. } | A::Corrupt { .. } | A::Hash(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(_: tokio::task::JoinError) -> Self {
        ApiError::Internal("a background task of the request failed; try again".into())
    }
}
