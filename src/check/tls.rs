//! SSL_GET's transport: TLS under the unchanged HTTP_GET dialog.
//!
//! With the `tls` cargo feature this is rustls with the pure-Rust RustCrypto
//! provider (no C code, so every musl target builds). Without it, SSL_GET
//! checkers are disabled at start with a log line and `genhash -S` refuses.
//!
//! - [`TlsDialog`] wraps a [`StreamDialog`] (the HTTP one) as data: the
//!   engine hands it the bytes read from the non-blocking socket and writes
//!   the TLS records it returns, on the same mio readiness events and with
//!   the same deadlines as plain HTTP. No thread, no blocking call.
//! - [`BlockingTls`] is genhash's one-shot client, every wait bounded by a
//!   deadline.
//!
//! Like keepalived (which never calls `SSL_CTX_set_verify`), the server's
//! certificate is not verified: any certificate is accepted, but the
//! handshake signature must still verify with the certificate's key, so the
//! peer has to hold the key of the certificate it shows. The key is read
//! straight from the certificate's SubjectPublicKeyInfo, so old X.509 v1 or
//! unusual certificates work as they do with OpenSSL.
//!
//! Client certificate: the top-level `SSL` block's `certificate` and `key`
//! (PEM), read by [`TlsClient`] once per (re)load and presented to servers
//! that ask for one; a file that cannot be used is logged and the checks go
//! on without a certificate.
//!
//! SNI: `sni_name` when set; else, with `enable_sni`, the virtualhost (url,
//! then checker, real server, virtual server); else none. `tls_compliant`
//! sends a close_notify alert before closing (keepalived's quiet shutdown
//! otherwise). A server that closes without close_notify ends the body like
//! a plain TCP close, as with keepalived.

#[cfg(feature = "tls")]
pub use enabled::*;

#[cfg(not(feature = "tls"))]
pub use disabled::*;

#[cfg(not(feature = "tls"))]
mod disabled {
    use std::net::IpAddr;

    use log::error;

    use crate::check::dialog::{Outcome, StreamDialog};
    use crate::check::RsId;
    use crate::config::model::{HttpCheck, RealServer, SslOptions, VirtualServer};

    /// Without the `tls` feature there is no TLS client to set up.
    #[derive(Debug, Clone)]
    pub struct TlsClient;

    impl TlsClient {
        pub fn new(_ssl: Option<&SslOptions>) -> TlsClient {
            TlsClient
        }
    }

    /// Without the `tls` feature there is no TLS target: it cannot exist.
    #[derive(Debug, Clone)]
    pub enum TlsTarget {}

    impl TlsTarget {
        /// Says that this build has no TLS; SSL_GET checkers are disabled.
        pub fn new(
            _client: &TlsClient,
            _h: &HttpCheck,
            _vs: &VirtualServer,
            _rs: &RealServer,
            _ip: IpAddr,
            id: &RsId,
        ) -> Option<TlsTarget> {
            error!(
                "SSL_GET for service {id} in VS {}: this build has no TLS support (built without the 'tls' feature); checker disabled, the real server's other checkers decide",
                id.vs
            );
            None
        }

        pub fn wrap(
            &self,
            _url_index: usize,
            _dialog: StreamDialog,
        ) -> Result<StreamDialog, Outcome> {
            match *self {}
        }
    }
}

#[cfg(feature = "tls")]
mod enabled {
    use std::fmt;
    use std::io::{self, Read, Write};
    use std::net::{IpAddr, TcpStream};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use log::{error, warn};
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{
        CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, PeerMisbehaved,
        SignatureScheme,
    };

    use crate::check::dialog::{Outcome, ProbeError, Step, StreamDialog};
    use crate::check::RsId;
    use crate::config::diag::Spanned;
    use crate::config::model::{HttpCheck, RealServer, SslOptions, VirtualServer};

    /// Why a TLS exchange failed.
    #[derive(Debug)]
    pub enum TlsError {
        /// The client could not be set up (provider or protocol versions).
        Setup(rustls::Error),
        /// The handshake or a record failed, or the server sent an alert.
        Protocol(rustls::Error),
        /// The server closed the connection during the handshake.
        ClosedInHandshake,
        /// rustls refused data (its buffers are full).
        Buffer(io::Error),
        /// `sni_name` / virtualhost is not a valid DNS name.
        BadServerName(String),
        /// The SSL block's certificate and key were refused.
        ClientCertificate(rustls::Error),
    }

    impl fmt::Display for TlsError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TlsError::Setup(e) => write!(f, "SSL setup error: {e}"),
                TlsError::Protocol(e) => write!(f, "SSL error: {e}"),
                TlsError::ClosedInHandshake => {
                    write!(f, "SSL error: connection closed during the handshake")
                }
                TlsError::Buffer(e) => write!(f, "SSL buffer error: {e}"),
                TlsError::BadServerName(n) => write!(f, "SSL error: invalid server name '{n}'"),
                TlsError::ClientCertificate(e) => {
                    write!(f, "SSL client certificate refused: {e}")
                }
            }
        }
    }

    impl std::error::Error for TlsError {}

    // ===== client configuration =====

    /// Why the SSL block's certificate or key file could not be read: the
    /// file is missing or unreadable, or holds no PEM item of that kind.
    #[derive(Debug)]
    pub struct ClientCertError {
        keyword: &'static str,
        file: Spanned<String>,
        reason: String,
    }

    impl fmt::Display for ClientCertError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "SSL {} '{}' ({}): {}",
                self.keyword, self.file.value, self.file.span, self.reason
            )
        }
    }

    impl std::error::Error for ClientCertError {}

    type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

    /// Reads the SSL block's certificate chain and key (PEM; the key
    /// unencrypted: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub fn read_client_auth(ssl: &SslOptions) -> Result<Option<ClientAuth>, ClientCertError> {
        let (Some(cert), Some(key)) = (&ssl.certificate, &ssl.key) else {
            return Ok(None);
        };
        let read_error = |keyword, file: &Spanned<String>, reason: String| ClientCertError {
            keyword,
            file: file.clone(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(&cert.value)
            .and_then(|items| items.collect::<Result<Vec<_>, _>>())
            .map_err(|e| read_error("certificate", cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(read_error(
                "certificate",
                cert,
                "no PEM CERTIFICATE in the file".into(),
            ));
        }
        let key_der = PrivateKeyDer::from_pem_file(&key.value).map_err(|e| {
            let reason = match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no unencrypted PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in the file".to_string()
                }
                other => other.to_string(),
            };
            read_error("key", key, reason)
        })?;
        Ok(Some((chain, key_der)))
    }

    /// A client configuration: any server certificate accepted (see the
    /// module docs), the client certificate presented when given. Each
    /// configuration has its own session cache (bounded by rustls: 256
    /// servers).
    pub fn client_config(auth: Option<ClientAuth>) -> Result<Arc<ClientConfig>, TlsError> {
        let provider: CryptoProvider = rustls_rustcrypto::provider();
        let verifier = Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match auth {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::ClientCertificate)?,
        };
        Ok(Arc::new(config))
    }

    /// The TLS client every SSL_GET checker of one configuration shares,
    /// built once per (re)load so certificate files are read again on
    /// SIGHUP.
    #[derive(Debug, Clone)]
    pub struct TlsClient {
        /// `None`: no TLS at all (logged).
        pub(super) config: Option<Arc<ClientConfig>>,
    }

    impl TlsClient {
        /// Logs what cannot be used: an unreadable CA file (unused, as in
        /// keepalived), a client certificate that cannot be loaded (the
        /// checkers then present none).
        pub fn new(ssl: Option<&SslOptions>) -> TlsClient {
            if let Some(ca) = ssl.and_then(|s| s.ca.as_ref()) {
                if let Err(e) = std::fs::File::open(&ca.value) {
                    warn!(
                        "SSL ca '{}' ({}): {e}; not needed (server certificates are not verified, as in keepalived)",
                        ca.value, ca.span
                    );
                }
            }
            let auth = match ssl.map(read_client_auth).transpose() {
                Ok(auth) => auth.flatten(),
                Err(e) => {
                    error!("{e}; SSL_GET presents no client certificate");
                    None
                }
            };
            let with_auth = auth.is_some();
            let config = match client_config(auth) {
                Ok(c) => Some(c),
                Err(e) if with_auth => {
                    error!("{e}; SSL_GET presents no client certificate");
                    client_config(None).ok()
                }
                Err(e) => {
                    error!("{e}; SSL_GET checkers disabled");
                    None
                }
            };
            TlsClient { config }
        }
    }

    /// The name to connect as: a DNS name is sent as SNI, an address is not.
    pub fn server_name(ip: IpAddr, sni: Option<&str>) -> Result<ServerName<'static>, TlsError> {
        match sni {
            Some(name) => ServerName::try_from(name.to_string())
                .map_err(|_| TlsError::BadServerName(name.to_string())),
            None => Ok(ServerName::IpAddress(ip.into())),
        }
    }

    // ===== certificate "verification" =====

    /// Accepts any certificate (see the module docs); checks handshake
    /// signatures against the certificate's public key.
    #[derive(Debug)]
    struct AnyCertificate {
        algorithms: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_signature(&self.algorithms, message, cert, dss, false)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_signature(&self.algorithms, message, cert, dss, true)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    /// A handshake signature made with the key in `cert`.
    pub(super) fn verify_signature(
        algorithms: &WebPkiSupportedAlgorithms,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // RFC 8446 4.2.3: no PKCS#1 v1.5 and no SHA-1 in TLS 1.3.
        let tls13_scheme = matches!(
            dss.scheme,
            SignatureScheme::ECDSA_NISTP256_SHA256
                | SignatureScheme::ECDSA_NISTP384_SHA384
                | SignatureScheme::ECDSA_NISTP521_SHA512
                | SignatureScheme::RSA_PSS_SHA256
                | SignatureScheme::RSA_PSS_SHA384
                | SignatureScheme::RSA_PSS_SHA512
                | SignatureScheme::ED25519
                | SignatureScheme::ED448
        );
        if tls13 && !tls13_scheme {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        let candidates = algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        // RFC 8446 4.2.3: in TLS 1.3 the scheme names one algorithm.
        let candidates = if tls13 {
            candidates.get(..1).unwrap_or_default()
        } else {
            candidates
        };
        let spki = super::der::subject_public_key(cert.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        let mut key_matched = false;
        for alg in candidates {
            if alg.public_key_alg_id().as_ref() != spki.algorithm {
                continue;
            }
            key_matched = true;
            if alg
                .verify_signature(spki.key, message, dss.signature())
                .is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(rustls::Error::InvalidCertificate(if key_matched {
            CertificateError::BadSignature
        } else {
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: Vec::new(),
                public_key_algorithm_id: spki.algorithm.to_vec(),
            }
        }))
    }

    // ===== SSL_GET on the event loop =====

    /// What an SSL_GET checker needs besides the HTTP requests.
    #[derive(Debug, Clone)]
    pub struct TlsTarget {
        config: Arc<ClientConfig>,
        /// Per URL: the SNI name, or the address (no SNI).
        names: Vec<ServerName<'static>>,
        close_notify: bool,
    }

    impl TlsTarget {
        /// `None` (after logging why) when TLS cannot be set up.
        pub fn new(
            client: &TlsClient,
            h: &HttpCheck,
            vs: &VirtualServer,
            rs: &RealServer,
            ip: IpAddr,
            id: &RsId,
        ) -> Option<TlsTarget> {
            let Some(config) = client.config.clone() else {
                error!(
                    "SSL_GET for service {id} in VS {}: no TLS client (see above); checker disabled",
                    id.vs
                );
                return None;
            };
            let names = h
                .urls
                .iter()
                .map(|u| {
                    let sni = h.sni_name.as_ref().map(|n| n.value.as_str()).or_else(|| {
                        h.enable_sni.value.then_some(())?;
                        h.virtualhost_for(u, rs, vs)
                    });
                    server_name(ip, sni).unwrap_or_else(|e| {
                        warn!("SSL_GET for service {id} in VS {}: {e}; no SNI sent", id.vs);
                        ServerName::IpAddress(ip.into())
                    })
                })
                .collect();
            Some(TlsTarget {
                config,
                names,
                close_notify: h.tls_compliant.value,
            })
        }

        /// The dialog for URL `url_index`, over a new TLS session.
        pub fn wrap(&self, url_index: usize, inner: StreamDialog) -> Result<StreamDialog, Outcome> {
            // One name per URL (built from the same list as the requests).
            let name = self
                .names
                .get(url_index)
                .cloned()
                .ok_or(Err(ProbeError::Tls(TlsError::BadServerName(format!(
                    "no server name for URL {url_index}"
                )))))?;
            let conn = ClientConnection::new(self.config.clone(), name)
                .map_err(|e| Err(ProbeError::Tls(TlsError::Setup(e))))?;
            Ok(StreamDialog::Tls(Box::new(TlsDialog::new(
                conn,
                inner,
                self.close_notify,
            ))))
        }
    }

    /// Plaintext read from rustls per call into the inner dialog.
    const PLAINTEXT_CHUNK: usize = 8 * 1024;

    /// A stream dialog over TLS, as data: bytes from the socket in, TLS
    /// records to write out (see the module docs).
    #[derive(Debug)]
    pub struct TlsDialog {
        conn: ClientConnection,
        inner: StreamDialog,
        close_notify: bool,
    }

    impl TlsDialog {
        pub fn new(conn: ClientConnection, inner: StreamDialog, close_notify: bool) -> Self {
            TlsDialog {
                conn,
                inner,
                close_notify,
            }
        }

        /// The TCP connection is up: send the ClientHello. What the inner
        /// dialog sends first (the request) waits in rustls until the
        /// handshake is done.
        pub fn start(&mut self) -> Step {
            let step = self.inner.start();
            match self.apply(step) {
                Some(done) => done,
                None => self.output(),
            }
        }

        /// Bytes from the socket.
        pub fn on_data(&mut self, data: &[u8]) -> Step {
            let mut input = data;
            // Each pass consumes input or returns.
            loop {
                if let Some(done) = self.drain_plaintext() {
                    return done;
                }
                if input.is_empty() {
                    break;
                }
                match self.conn.read_tls(&mut input) {
                    // After close_notify rustls reads nothing more.
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return self.fail(TlsError::Buffer(e)),
                }
                if let Err(e) = self.conn.process_new_packets() {
                    return self.fail(TlsError::Protocol(e));
                }
            }
            self.output()
        }

        /// The server closed the TCP connection.
        pub fn on_eof(&mut self) -> Step {
            // An empty read tells rustls about the EOF.
            let _ = self.conn.read_tls(&mut io::empty());
            if let Err(e) = self.conn.process_new_packets() {
                return self.fail(TlsError::Protocol(e));
            }
            if self.conn.is_handshaking() {
                return self.fail(TlsError::ClosedInHandshake);
            }
            if let Some(done) = self.drain_plaintext() {
                return done;
            }
            let step = self.inner.on_eof();
            self.apply(step)
                .unwrap_or_else(|| self.fail(TlsError::ClosedInHandshake))
        }

        /// Feeds decrypted bytes to the inner dialog; `Some` once it is over.
        fn drain_plaintext(&mut self) -> Option<Step> {
            let mut buf = [0u8; PLAINTEXT_CHUNK];
            // Bounded: each pass consumes plaintext rustls holds, or returns.
            loop {
                let (step, end) = match self.conn.reader().read(&mut buf) {
                    Ok(0) => (self.inner.on_eof(), true),
                    Ok(n) => (self.inner.on_data(&buf[..n]), false),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    // Closed without close_notify: the end, as for plain TCP.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        (self.inner.on_eof(), true)
                    }
                    Err(e) => return Some(self.fail(TlsError::Buffer(e))),
                };
                if let Some(done) = self.apply(step) {
                    return Some(done);
                }
                if end {
                    // The inner dialog wants more after the end: it got none.
                    return Some(
                        self.finish(Err(ProbeError::Io(io::ErrorKind::UnexpectedEof.into()))),
                    );
                }
            }
        }

        /// Carries out the inner dialog's step; `Some` when it finished.
        fn apply(&mut self, step: Step) -> Option<Step> {
            match step {
                Step::Recv => None,
                Step::Send(bytes) => match self.conn.writer().write_all(&bytes) {
                    Ok(()) => None,
                    Err(e) => Some(self.fail(TlsError::Buffer(e))),
                },
                Step::SendAndFinish(bytes, outcome) => {
                    let _ = self.conn.writer().write_all(&bytes);
                    Some(self.finish(outcome))
                }
                Step::Finish(outcome) => Some(self.finish(outcome)),
            }
        }

        fn finish(&mut self, outcome: Outcome) -> Step {
            if self.close_notify {
                self.conn.send_close_notify();
            }
            match self.pending() {
                out if out.is_empty() => Step::Finish(outcome),
                out => Step::SendAndFinish(out, outcome),
            }
        }

        /// Ends with `e`, sending the alert rustls queued, if any.
        fn fail(&mut self, e: TlsError) -> Step {
            let outcome = Err(ProbeError::Tls(e));
            match self.pending() {
                out if out.is_empty() => Step::Finish(outcome),
                out => Step::SendAndFinish(out, outcome),
            }
        }

        /// TLS records to send, or wait for the server.
        fn output(&mut self) -> Step {
            match self.pending() {
                out if out.is_empty() => Step::Recv,
                out => Step::Send(out.into()),
            }
        }

        fn pending(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut out) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            out
        }
    }

    // ===== genhash =====

    /// Why a blocking TLS read or write failed.
    #[derive(Debug)]
    pub enum BlockingError {
        /// Socket error; `TimedOut` / `WouldBlock` when the deadline passed.
        Io(io::Error),
        Tls(TlsError),
    }

    /// genhash's TLS client over a blocking socket; every socket wait ends
    /// at the deadline.
    #[derive(Debug)]
    pub struct BlockingTls {
        conn: ClientConnection,
        sock: TcpStream,
    }

    fn remaining(deadline: Instant) -> Result<Duration, BlockingError> {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| BlockingError::Io(io::ErrorKind::TimedOut.into()))
    }

    impl BlockingTls {
        /// Starts a session on the connected `sock`; `sni` is sent as the
        /// server name when given.
        pub fn new(sock: TcpStream, ip: IpAddr, sni: Option<&str>) -> Result<Self, TlsError> {
            let config = client_config(None)?;
            let conn =
                ClientConnection::new(config, server_name(ip, sni)?).map_err(TlsError::Setup)?;
            Ok(BlockingTls { conn, sock })
        }

        /// Queues `data` (sent once the handshake is done) and writes what
        /// can be written now.
        pub fn send(&mut self, data: &[u8], deadline: Instant) -> Result<(), BlockingError> {
            self.conn
                .writer()
                .write_all(data)
                .map_err(|e| BlockingError::Tls(TlsError::Buffer(e)))?;
            self.flush(deadline)
        }

        fn flush(&mut self, deadline: Instant) -> Result<(), BlockingError> {
            while self.conn.wants_write() {
                self.sock
                    .set_write_timeout(Some(remaining(deadline)?))
                    .map_err(BlockingError::Io)?;
                match self.conn.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(BlockingError::Io(e)),
                }
            }
            Ok(())
        }

        /// Reads decrypted bytes, driving the handshake as needed; 0 at the
        /// end of the stream (close_notify or TCP close).
        pub fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, BlockingError> {
            if buf.is_empty() {
                return Ok(0);
            }
            loop {
                match self.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return if self.conn.is_handshaking() {
                            Err(BlockingError::Tls(TlsError::ClosedInHandshake))
                        } else {
                            Ok(0)
                        };
                    }
                    Err(e) => return Err(BlockingError::Tls(TlsError::Buffer(e))),
                }
                self.flush(deadline)?;
                self.sock
                    .set_read_timeout(Some(remaining(deadline)?))
                    .map_err(BlockingError::Io)?;
                match self.conn.read_tls(&mut self.sock) {
                    // 0 is the EOF; rustls notes it and the reader reports it.
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(BlockingError::Io(e)),
                }
                if let Err(e) = self.conn.process_new_packets() {
                    // Best effort: tell the server why.
                    let _ = self.flush(deadline);
                    return Err(BlockingError::Tls(TlsError::Protocol(e)));
                }
            }
        }
    }
}

/// Handshakes against an in-memory rustls server: no sockets.
#[cfg(all(test, feature = "tls"))]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use md5::{Digest, Md5};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ClientConnection, ServerConfig, ServerConnection};

    use super::{client_config, server_name, TlsDialog, TlsError};
    use crate::check::dialog::{Outcome, ProbeError, Step, StreamDialog};
    use crate::check::http::{build_request, Expect, HttpError, ResponseReader};
    use crate::config::model::HttpProtocol;

    const CERT: &[u8] = include_bytes!("../../tests/vectors/tls/ec-cert.der");
    const KEY: &[u8] = include_bytes!("../../tests/vectors/tls/ec-key.der");
    const OTHER_KEY: &[u8] = include_bytes!("../../tests/vectors/tls/other-ec-key.der");

    fn server(key: &[u8], tls12_only: bool) -> ServerConnection {
        let provider = Arc::new(rustls_rustcrypto::provider());
        let builder = ServerConfig::builder_with_provider(provider);
        let builder = if tls12_only {
            builder.with_protocol_versions(&[&rustls::version::TLS12])
        } else {
            builder.with_safe_default_protocol_versions()
        }
        .expect("versions");
        let config = builder
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(CERT.to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY.to_vec())),
            )
            .expect("cert");
        let config = if key == KEY {
            config
        } else {
            // The certificate with somebody else's key.
            let mut c = config;
            c.cert_resolver = Arc::new(FixedKey(Arc::new(rustls::sign::CertifiedKey::new(
                vec![CertificateDer::from(CERT.to_vec())],
                rustls_rustcrypto::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
                    PrivatePkcs8KeyDer::from(key.to_vec()),
                ))
                .expect("key"),
            ))));
            c
        };
        ServerConnection::new(Arc::new(config)).expect("server")
    }

    #[derive(Debug)]
    struct FixedKey(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for FixedKey {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Close {
        /// close_notify, then TCP close.
        Notify,
        /// TCP close only.
        Tcp,
        /// Keep the connection open.
        Open,
    }

    /// The server side: answers the first complete request.
    struct Peer {
        conn: ServerConnection,
        response: Vec<u8>,
        close: Close,
        request: Vec<u8>,
        responded: bool,
        /// What the client sent after its last step (alerts).
        tail: Vec<u8>,
    }

    impl Peer {
        fn new(conn: ServerConnection, response: &[u8], close: Close) -> Peer {
            Peer {
                conn,
                response: response.to_vec(),
                close,
                request: Vec::new(),
                responded: false,
                tail: Vec::new(),
            }
        }

        fn receive(&mut self, mut bytes: &[u8]) {
            while !bytes.is_empty() {
                if self.conn.read_tls(&mut bytes).expect("server read_tls") == 0 {
                    break;
                }
                self.conn.process_new_packets().expect("server process");
            }
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.conn.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                self.request.extend_from_slice(&buf[..n]);
            }
        }

        fn output(&mut self) -> Vec<u8> {
            if !self.responded && self.request.ends_with(b"\r\n\r\n") {
                self.responded = true;
                self.conn.writer().write_all(&self.response).expect("write");
                if self.close == Close::Notify {
                    self.conn.send_close_notify();
                }
            }
            let mut out = Vec::new();
            while self.conn.wants_write() {
                self.conn.write_tls(&mut out).expect("write_tls");
            }
            out
        }

        fn closed(&self) -> bool {
            self.responded && self.close != Close::Open
        }
    }

    fn http_dialog(digest: Option<[u8; 16]>) -> StreamDialog {
        StreamDialog::Http {
            request: build_request("/index.html", "10.0.0.2", 443, HttpProtocol::V1_0).into(),
            reader: ResponseReader::new(Expect {
                status: Vec::new(),
                digest,
                always_hash: false,
            }),
        }
    }

    fn dialog(sni: Option<&str>, inner: StreamDialog, close_notify: bool) -> TlsDialog {
        let config = client_config(None).expect("client config");
        let name = server_name("10.0.0.2".parse().expect("ip"), sni).expect("name");
        let conn = ClientConnection::new(config, name).expect("client");
        TlsDialog::new(conn, inner, close_notify)
    }

    /// Runs the conversation, the server's bytes cut into `chunk`-byte
    /// reads. Returns the outcome and the client's last bytes.
    fn converse(d: &mut TlsDialog, peer: &mut Peer, chunk: usize) -> (Outcome, Vec<u8>) {
        fn handle(step: Step, peer: &mut Peer) -> Option<(Outcome, Vec<u8>)> {
            match step {
                Step::Recv => None,
                Step::Send(bytes) => {
                    assert!(!bytes.is_empty(), "Send with nothing");
                    peer.receive(&bytes);
                    None
                }
                Step::Finish(outcome) => Some((outcome, Vec::new())),
                Step::SendAndFinish(bytes, outcome) => {
                    peer.tail = bytes.clone();
                    Some((outcome, bytes))
                }
            }
        }
        let mut step = d.start();
        for _ in 0..10_000 {
            if let Some(done) = handle(step, peer) {
                return done;
            }
            let out = peer.output();
            if out.is_empty() {
                assert!(peer.closed(), "conversation stalled");
                step = d.on_eof();
                continue;
            }
            for piece in out.chunks(chunk) {
                if let Some(done) = handle(d.on_data(piece), peer) {
                    return done;
                }
            }
            step = Step::Recv;
        }
        panic!("conversation never ended");
    }

    const BODY: &[u8] = b"<html>hello over TLS</html>\n";

    fn md5(bytes: &[u8]) -> [u8; 16] {
        let mut d = [0u8; 16];
        d.copy_from_slice(&Md5::digest(bytes));
        d
    }

    fn response(with_length: bool) -> Vec<u8> {
        let mut r = if with_length {
            format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", BODY.len()).into_bytes()
        } else {
            b"HTTP/1.0 200 OK\r\n\r\n".to_vec()
        };
        r.extend_from_slice(BODY);
        r
    }

    #[test]
    fn fetches_and_hashes_over_tls13_and_tls12_in_any_split() {
        for tls12 in [false, true] {
            for close in [Close::Notify, Close::Tcp, Close::Open] {
                for chunk in [1, 7, 100_000] {
                    let with_length = close == Close::Open;
                    let mut peer = Peer::new(server(KEY, tls12), &response(with_length), close);
                    let mut d = dialog(None, http_dialog(Some(md5(BODY))), false);
                    let (outcome, _) = converse(&mut d, &mut peer, chunk);
                    assert!(outcome.is_ok(), "tls12 {tls12} chunk {chunk}: {outcome:?}");
                    // The request went through unchanged, without SNI.
                    assert_eq!(
                        peer.request,
                        build_request("/index.html", "10.0.0.2", 443, HttpProtocol::V1_0)
                    );
                    assert_eq!(peer.conn.server_name(), None);
                    let version = peer.conn.protocol_version();
                    assert_eq!(
                        version,
                        Some(if tls12 {
                            rustls::ProtocolVersion::TLSv1_2
                        } else {
                            rustls::ProtocolVersion::TLSv1_3
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_digest_fails_and_sni_is_sent() {
        let mut peer = Peer::new(server(KEY, false), &response(false), Close::Tcp);
        let mut d = dialog(Some("www.example.com"), http_dialog(Some([0; 16])), false);
        let (outcome, _) = converse(&mut d, &mut peer, 50);
        match outcome {
            Err(ProbeError::Http(HttpError::Digest(got))) => assert_eq!(got, md5(BODY)),
            other => panic!("{other:?}"),
        }
        assert_eq!(peer.conn.server_name(), Some("www.example.com"));
    }

    #[test]
    fn tls_compliant_sends_close_notify() {
        let mut peer = Peer::new(server(KEY, false), &response(true), Close::Open);
        let mut d = dialog(None, http_dialog(None), true);
        let (outcome, last) = converse(&mut d, &mut peer, 1000);
        assert!(outcome.is_ok(), "{outcome:?}");
        assert!(!last.is_empty(), "close_notify sent");
        peer.receive(&last);
        let mut buf = [0u8; 8];
        assert_eq!(
            peer.conn.reader().read(&mut buf).ok(),
            Some(0),
            "clean close"
        );
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_fails_the_handshake() {
        for tls12 in [false, true] {
            let mut peer = Peer::new(server(OTHER_KEY, tls12), &response(false), Close::Tcp);
            let mut d = dialog(None, http_dialog(None), false);
            let (outcome, alert) = converse(&mut d, &mut peer, 1000);
            assert!(
                matches!(
                    outcome,
                    Err(ProbeError::Tls(TlsError::Protocol(
                        rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
                    )))
                ),
                "tls12 {tls12}: {outcome:?}"
            );
            assert!(!alert.is_empty(), "an alert tells the server why");
            assert!(peer.request.is_empty(), "the request was never sent");
        }
    }

    #[test]
    fn plain_http_answer_and_early_close_are_tls_errors() {
        let mut d = dialog(None, http_dialog(None), false);
        assert!(matches!(d.start(), Step::Send(_)));
        match d.on_data(b"HTTP/1.0 200 OK\r\n\r\nhello") {
            Step::SendAndFinish(_, Err(ProbeError::Tls(TlsError::Protocol(_))))
            | Step::Finish(Err(ProbeError::Tls(TlsError::Protocol(_)))) => {}
            other => panic!("{other:?}"),
        }
        let mut d = dialog(None, http_dialog(None), false);
        let _ = d.start();
        assert!(matches!(
            d.on_eof(),
            Step::Finish(Err(ProbeError::Tls(TlsError::ClosedInHandshake)))
        ));
    }

    /// Standard base64 (RFC 4648, padded), for PEM files in tests.
    fn base64(data: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn unreadable_client_certificates_are_named_and_dropped() {
        use crate::config::diag::{Span, Spanned};
        use crate::config::model::SslOptions;
        let dir = std::env::temp_dir().join(format!("krs-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file: std::rc::Rc<str> = "t.conf".into();
        let at = |path: &std::path::Path, line| {
            Some(Spanned::new(
                path.display().to_string(),
                Span::new(&file, line, 5),
            ))
        };
        let encrypted = dir.join("enc.pem");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .expect("write");
        let no_cert = dir.join("none.pem");
        std::fs::write(&no_cert, "no PEM here\n").expect("write");
        let missing = dir.join("missing.pem");
        let message = |certificate, key| {
            let ssl = SslOptions {
                certificate,
                key,
                ..SslOptions::default()
            };
            // Whatever was wrong, the client still works, without a certificate.
            assert!(super::TlsClient::new(Some(&ssl)).config.is_some());
            super::read_client_auth(&ssl)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let m = message(at(&missing, 3), at(&encrypted, 4));
        assert!(
            m.starts_with(&format!(
                "SSL certificate '{}' (t.conf:3:5): ",
                missing.display()
            )),
            "{m}"
        );
        let m = message(at(&no_cert, 3), at(&encrypted, 4));
        assert!(m.ends_with("no PEM CERTIFICATE in the file"), "{m}");
        let cert = dir.join("cert.pem");
        std::fs::write(
            &cert,
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64(CERT)
            ),
        )
        .expect("write");
        let m = message(at(&cert, 3), at(&encrypted, 4));
        assert!(
            m.starts_with(&format!(
                "SSL key '{}' (t.conf:4:5): no unencrypted",
                encrypted.display()
            )),
            "{m}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..300 {
            let mut d = dialog(None, http_dialog(None), false);
            let _ = d.start();
            for _ in 0..20 {
                let len = (seed % 300) as usize;
                let data: Vec<u8> = (0..len)
                    .map(|i| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plausible record headers early on.
                        match (round % 3, i) {
                            (0, 0) => 0x16,
                            (0, 1) => 0x03,
                            _ => seed as u8,
                        }
                    })
                    .collect();
                match d.on_data(&data) {
                    Step::Recv | Step::Send(_) => {}
                    Step::Finish(_) | Step::SendAndFinish(..) => break,
                }
            }
        }
    }
}

/// Just enough DER to find a certificate's public key (no allocation, no
/// panic on any input).
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
mod der {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    /// `[0] EXPLICIT Version` of TBSCertificate.
    const VERSION: u8 = 0xa0;

    /// `SubjectPublicKeyInfo`, split.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PublicKey<'a> {
        /// The AlgorithmIdentifier's contents (OID and parameters), as
        /// rustls' `public_key_alg_id()` spells them.
        pub algorithm: &'a [u8],
        /// The subjectPublicKey bits.
        pub key: &'a [u8],
    }

    /// One TLV: (tag, contents, rest). Definite lengths up to 4 bytes only.
    fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        Some((tag, contents, rest))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        match next(input)? {
            (t, contents, rest) if t == tag => Some((contents, rest)),
            _ => None,
        }
    }

    /// The public key of an X.509 certificate (any version).
    pub fn subject_public_key(cert: &[u8]) -> Option<PublicKey<'_>> {
        let (certificate, _) = expect(cert, SEQUENCE)?;
        let (tbs, _) = expect(certificate, SEQUENCE)?;
        let mut rest = tbs;
        if let Some((VERSION, _, after)) = next(rest) {
            rest = after;
        }
        let (_serial, rest) = expect(rest, INTEGER)?;
        let (_signature, rest) = expect(rest, SEQUENCE)?;
        let (_issuer, rest) = expect(rest, SEQUENCE)?;
        let (_validity, rest) = expect(rest, SEQUENCE)?;
        let (_subject, rest) = expect(rest, SEQUENCE)?;
        let (spki, _) = expect(rest, SEQUENCE)?;
        let (algorithm, rest) = expect(spki, SEQUENCE)?;
        let (bits, _) = expect(rest, BIT_STRING)?;
        // Keys are whole bytes: no unused bits.
        let (&0, key) = bits.split_first()? else {
            return None;
        };
        Some(PublicKey { algorithm, key })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A v1 certificate skeleton (no version field), then the same as
        /// v3: only the SPKI matters.
        fn cert(version: bool) -> Vec<u8> {
            let mut tbs = Vec::new();
            if version {
                tbs.extend_from_slice(&[0xa0, 0x03, 0x02, 0x01, 0x02]);
            }
            tbs.extend_from_slice(&[0x02, 0x01, 0x07]); // serial
            tbs.extend_from_slice(&[0x30, 0x00]); // signature algorithm
            tbs.extend_from_slice(&[0x30, 0x00]); // issuer
            tbs.extend_from_slice(&[0x30, 0x00]); // validity
            tbs.extend_from_slice(&[0x30, 0x00]); // subject
                                                  // SPKI: Ed25519 OID, 32 key bytes.
            let mut spki = vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
            spki.extend(1..=32u8);
            tbs.push(0x30);
            tbs.push(spki.len() as u8);
            tbs.extend_from_slice(&spki);
            let mut inner = vec![0x30, 0x81, tbs.len() as u8];
            inner.extend_from_slice(&tbs);
            inner.extend_from_slice(&[0x30, 0x00, 0x03, 0x01, 0x00]); // sig alg + value
            let mut out = vec![0x30, 0x81, inner.len() as u8];
            out.extend_from_slice(&inner);
            out
        }

        #[test]
        fn finds_the_key_in_v1_and_v3_certificates() {
            for version in [false, true] {
                let der = cert(version);
                let key = subject_public_key(&der).expect("parses");
                assert_eq!(key.algorithm, &[0x06, 0x03, 0x2b, 0x65, 0x70]);
                assert_eq!(key.key, (1..=32u8).collect::<Vec<_>>().as_slice());
            }
        }

        #[test]
        fn never_panics_on_damaged_input() {
            let der = cert(true);
            for len in 0..der.len() {
                assert!(subject_public_key(&der[..len]).is_none(), "cut at {len}");
            }
            for i in 0..der.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = der.clone();
                    bad[i] ^= flip;
                    let _ = subject_public_key(&bad);
                }
            }
            // Long-form lengths past the input, indefinite length, 5-byte length.
            for bad in [
                &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
                &[0x30, 0x80, 0x00, 0x00],
                &[0x30, 0x85, 0, 0, 0, 0, 1, 0],
                &[0x1f, 0x01, 0x00],
                &[],
            ] {
                assert!(subject_public_key(bad).is_none());
            }
        }
    }
}
