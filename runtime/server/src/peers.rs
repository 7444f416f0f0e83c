//! The nodes' own channel: what one node forwards to another travels over
//! TLS to a listener of the other's that serves nodes only, and goes only
//! to a listener that proves it is the node the cluster's key vouches for.
//!
//! - Each node makes a TLS key and a self-signed certificate when it
//!   starts (they never leave its memory), listens for the other nodes on
//!   a port of its own (`serve --peer-addr`), and says in its heartbeat
//!   where that port is and the SHA-256 of its certificate. Heartbeats are
//!   sealed with the cluster's key, which NATS never holds: what a node
//!   reads there was written by a node of the cluster.
//! - A node forwarding a request connects to that address and accepts
//!   only the certificate its heartbeat names ([`Pinned`]): a listener
//!   put in its place (another process on its address, someone on the
//!   network between them) receives nothing, least of all a password, and
//!   the answer relayed back is the node's own.
//! - The peer listener takes requests from nodes only: each carries the
//!   forwarding secret derived from the cluster's key, now only ever sent
//!   inside TLS to a pinned node. The public listener never takes a
//!   request for a node's, whatever its headers say.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::ServerError;

/// The name in a node's certificate; nothing checks it: the certificate is
/// pinned by its hash, not trusted for a name.
const CERTIFICATE_NAME: &str = "domicile-node";
/// A peer that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// This node's TLS identity toward the other nodes, made at each start.
pub struct PeerIdentity {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl PeerIdentity {
    pub fn generate() -> Result<PeerIdentity, ServerError> {
        let made = rcgen::generate_simple_self_signed(vec![CERTIFICATE_NAME.to_owned()])
            .map_err(|e| ServerError::Peers(format!("cannot make this node's TLS certificate: {e}")))?;
        Ok(PeerIdentity {
            certificate: made.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
        })
    }

    /// The SHA-256 (hex) of the certificate: what the heartbeat says.
    pub fn certificate_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.certificate))
    }

    fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ServerError> {
        let bad = |e: rustls::Error| ServerError::Peers(format!("cannot set up TLS for the other nodes: {e}"));
        let config = rustls::ServerConfig::builder_with_provider(crypto())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(bad)?
            .with_no_client_auth()
            .with_single_cert(vec![self.certificate.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))
            .map_err(bad)?;
        Ok(Arc::new(config))
    }
}

/// The peer listener: TCP connections of the other nodes, each handed on
/// once its TLS handshake is done. Handshakes run on their own tasks, so
/// one slow or silent client holds up no other.
pub struct PeerListener {
    local: SocketAddr,
    accepted: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl PeerListener {
    pub fn new(listener: TcpListener, identity: &PeerIdentity) -> Result<PeerListener, ServerError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config()?);
        let local = listener.local_addr().map_err(|e| ServerError::Peers(e.to_string()))?;
        let (send, accepted) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, from) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: wait rather than spin.
                        tracing::warn!(error = %e, "accepting a connection of another node");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, send) = (acceptor.clone(), send.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => drop(send.send((tls, from)).await),
                        Ok(Err(e)) => tracing::warn!(%from, error = %e, "a TLS handshake on the peer port failed"),
                        Err(_) => tracing::warn!(%from, "a TLS handshake on the peer port did not finish in time"),
                    }
                });
            }
        });
        Ok(PeerListener { local, accepted, task })
    }
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for PeerListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Marks a request that came in on the peer listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViaPeerPort;

/// The address a peer connection comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, PeerListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, PeerListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The peer port's outermost layer: marks each request as come through
/// it ([`ViaPeerPort`]), with its connection's address as the client's
/// until a node's forwarding headers say whose it was.
pub(crate) async fn mark(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::ConnectInfo;
    let from = request.extensions().get::<ConnectInfo<PeerAddr>>().map(|info| info.0 .0);
    request.extensions_mut().insert(ViaPeerPort);
    if let Some(from) = from {
        request.extensions_mut().insert(ConnectInfo(from));
    }
    next.run(request).await
}

/// Where a node's peer listener is and which certificate it presents, as
/// its sealed heartbeat says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerAddress {
    pub(crate) address: String,
    pub(crate) certificate_sha256: [u8; 32],
}

/// The forwarding client's connector: the URI's host is a node's name,
/// looked up in what the heartbeats said ([`PeerConnector::learn`]); it
/// connects there and accepts only the certificate they named.
#[derive(Clone, Default)]
pub(crate) struct PeerConnector {
    peers: Arc<Mutex<std::collections::HashMap<String, PeerAddress>>>,
}

impl PeerConnector {
    /// Records where `node` is, from its heartbeat; a connection made
    /// before to an address or certificate since replaced fails, and the
    /// next is made to the new one.
    pub(crate) fn learn(&self, node: &str, peer: PeerAddress) {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).insert(node.to_owned(), peer);
    }

    fn lookup(&self, node: &str) -> Option<PeerAddress> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).get(node).cloned()
    }
}

impl tower_service::Service<axum::http::Uri> for PeerConnector {
    type Response = TokioIo<PeerStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: axum::http::Uri) -> Self::Future {
        let node = uri.host().unwrap_or_default().to_owned();
        let peer = self.lookup(&node);
        Box::pin(async move {
            let peer = peer.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no heartbeat says where node `{node}` is"))
            })?;
            let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&peer.address))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting took over 5 s"))??;
            tcp.set_nodelay(true)?;
            let connector = tokio_rustls::TlsConnector::from(pinned_client(peer.certificate_sha256)?);
            let name = ServerName::try_from(CERTIFICATE_NAME).expect("a valid DNS name");
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the TLS handshake took over 10 s"))??;
            Ok(TokioIo::new(PeerStream(tls)))
        })
    }
}

fn pinned_client(certificate_sha256: [u8; 32]) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let provider = crypto();
    let verifier = Arc::new(Pinned { certificate_sha256, provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts the one certificate a node's sealed heartbeat names, and checks
/// the handshake's signature with its key (that the peer holds the key).
#[derive(Debug)]
pub(crate) struct Pinned {
    certificate_sha256: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented: [u8; 32] = Sha256::digest(end_entity).into();
        if domicile_cluster::same_secret(&presented, &self.certificate_sha256) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the node presented a certificate other than the one its heartbeat names".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection to another node, as the forwarding client uses it.
pub(crate) struct PeerStream(tokio_rustls::client::TlsStream<TcpStream>);

impl Connection for PeerStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer listener serving one answer, and a connector that knows it
    /// as node `n2` with `certificate_sha256`.
    async fn call_n2(listener_identity: &PeerIdentity, pinned: [u8; 32]) -> Result<String, String> {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = tcp.local_addr().unwrap().to_string();
        let listener = PeerListener::new(tcp, listener_identity).unwrap();
        let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "from n2" }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let connector = PeerConnector::default();
        connector.learn("n2", PeerAddress { address, certificate_sha256: pinned });
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, axum::body::Body>(connector);
        let answered = client.get("https://n2/hello".parse().unwrap()).await.map_err(|e| format!("{e:?}"));
        server.abort();
        let body = axum::body::to_bytes(axum::body::Body::new(answered?.into_body()), 1024).await.unwrap();
        Ok(String::from_utf8(body.to_vec()).unwrap())
    }

    fn hash(identity: &PeerIdentity) -> [u8; 32] {
        hex::decode(identity.certificate_sha256()).unwrap().try_into().unwrap()
    }

    #[tokio::test]
    async fn a_node_is_reached_only_through_the_certificate_its_heartbeat_names() {
        let n2 = PeerIdentity::generate().unwrap();
        assert_eq!(call_n2(&n2, hash(&n2)).await.unwrap(), "from n2");
        // Another process on n2's address, with a certificate of its own.
        let impostor = PeerIdentity::generate().unwrap();
        let refused = call_n2(&impostor, hash(&n2)).await.unwrap_err();
        assert!(refused.contains("other than the one its heartbeat names"), "{refused}");
        assert_ne!(hash(&n2), hash(&impostor), "a new key pair at each start");
    }

    #[tokio::test]
    async fn a_node_no_heartbeat_names_is_not_reached() {
        let connector = PeerConnector::default();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, axum::body::Body>(connector);
        let refused = format!("{:?}", client.get("https://n9/hello".parse().unwrap()).await.unwrap_err());
        assert!(refused.contains("no heartbeat says where node `n9` is"), "{refused}");
    }

    #[tokio::test]
    async fn a_silent_client_holds_up_no_other_handshake() {
        let n2 = PeerIdentity::generate().unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = tcp.local_addr().unwrap();
        let listener = PeerListener::new(tcp, &n2).unwrap();
        let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "from n2" }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        // Connects and says nothing.
        let _silent = TcpStream::connect(address).await.unwrap();
        let connector = PeerConnector::default();
        connector.learn("n2", PeerAddress { address: address.to_string(), certificate_sha256: hash(&n2) });
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, axum::body::Body>(connector);
        let answered = tokio::time::timeout(Duration::from_secs(5), client.get("https://n2/hello".parse().unwrap()))
            .await
            .expect("answered while another client stays silent");
        assert_eq!(answered.unwrap().status(), 200);
        server.abort();
    }
}
