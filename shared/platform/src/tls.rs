//! Transport security: TLS on the listeners, from certificate and key files that are read
//! again when they change, with optional client-certificate verification (mTLS) against a
//! CA file; and the TLS settings of outgoing `https://` calls. Everything runs on rustls
//! with the aws-lc provider (the one reqwest and jsonwebtoken already use). The accept
//! loops live with their servers (`server`, the gateway's HTTP face); this module only
//! hands them the configuration that is current when a connection arrives.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::config::{ConfigError, Env};

/// How often a listener looks at its certificate files' modification times (on the next
/// connection after this long): a renewed certificate is served within this bound.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// ALPN of a gRPC listener (HTTP/2 only).
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN of an HTTP listener that speaks both versions.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The crypto provider every TLS configuration here is built on.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes aws-lc the process-wide default. Libraries that build their rustls configuration
/// without naming a provider (the Redis client) need one: the build also contains ring
/// (sqlx's rustls brings it), and with two compiled in rustls picks neither by itself.
pub fn install_default_provider() {
    // Already installed (by an earlier call): nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A listener's TLS settings: `<prefix>TLS_CERT_FILE` (the chain, leaf first) and
/// `<prefix>TLS_KEY_FILE` (PEM), and optionally `<prefix>TLS_CLIENT_CA_FILE`, whose CA
/// must then have signed every client's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTlsSettings {
    /// `None` when neither file is named (plaintext). Naming only one of the pair, or a
    /// client CA without them, is an error; so is a file that cannot be read or parsed,
    /// so a bad certificate stops start-up instead of the first handshake.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Option<Self>, ConfigError> {
        let cert_var = format!("{prefix}TLS_CERT_FILE");
        let key_var = format!("{prefix}TLS_KEY_FILE");
        let ca_var = format!("{prefix}TLS_CLIENT_CA_FILE");
        let settings = match (env.raw(&cert_var), env.raw(&key_var), env.raw(&ca_var)) {
            (None, None, None) => return Ok(None),
            (Some(cert), Some(key), ca) => Self {
                cert_file: cert.into(),
                key_file: key.into(),
                client_ca_file: ca.map(PathBuf::from),
            },
            (None, _, _) => {
                return Err(ConfigError::new(
                    &cert_var,
                    "",
                    format!("is required with {key_var} or {ca_var}"),
                ));
            }
            (Some(_), None, _) => {
                return Err(ConfigError::new(
                    &key_var,
                    "",
                    format!("is required with {cert_var}"),
                ));
            }
        };
        build_config(&settings, ALPN_GRPC).map_err(|e| ConfigError::new(&cert_var, "", e))?;
        Ok(Some(settings))
    }
}

/// Why a TLS configuration could not be built from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsFileError {
    TlsFileError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// The trust store of a CA file (one or more PEM certificates).
pub fn root_store(path: &Path) -> Result<RootCertStore, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// A server configuration from the files as they are now.
fn build_config(
    settings: &ServerTlsSettings,
    alpn: &[&[u8]],
) -> Result<ServerConfig, TlsFileError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca_file {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider)
                    .build()
                    .map_err(|e| file_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(
        certificates(&settings.cert_file)?,
        private_key(&settings.key_file)?,
    )?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// What identifies a version of the files: each one's modification time and length.
type Stamp = Vec<Option<(SystemTime, u64)>>;

/// The server configuration of one listener, rebuilt when its files change: checked at
/// most every [`RELOAD_CHECK`], when a connection arrives. A change that does not load
/// (a key written before its certificate, a broken file) keeps the last good
/// configuration and is retried on the next check.
pub struct ReloadingConfig {
    settings: ServerTlsSettings,
    alpn: &'static [&'static [u8]],
    state: Mutex<Loaded>,
}

struct Loaded {
    config: Arc<ServerConfig>,
    stamp: Stamp,
    checked: Instant,
}

impl std::fmt::Debug for ReloadingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingConfig")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ReloadingConfig {
    /// Loads the files now; an error names the file that failed.
    pub fn new(
        settings: ServerTlsSettings,
        alpn: &'static [&'static [u8]],
    ) -> Result<Self, TlsFileError> {
        let stamp = stamp(&settings);
        let config = Arc::new(build_config(&settings, alpn)?);
        Ok(Self {
            settings,
            alpn,
            state: Mutex::new(Loaded {
                config,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RELOAD_CHECK {
            state.checked = Instant::now();
            let now = stamp(&self.settings);
            if now != state.stamp {
                match build_config(&self.settings, self.alpn) {
                    Ok(config) => {
                        tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificate files changed: reloaded");
                        state.config = Arc::new(config);
                        state.stamp = now;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "TLS certificate files changed but do not load; serving the previous ones");
                    }
                }
            }
        }
        state.config.clone()
    }
}

fn stamp(settings: &ServerTlsSettings) -> Stamp {
    [
        Some(&settings.cert_file),
        Some(&settings.key_file),
        settings.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| {
        // `metadata` follows symlinks: a Kubernetes Secret volume swaps its `..data` link.
        fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
    .collect()
}

/// What a TLS client is told by three settings: a private CA to trust instead of the
/// public roots, and a client certificate with its key (both or neither). Each file is
/// read and parsed at start, so a bad one stops start-up naming its setting.
#[derive(Debug, Default)]
pub struct ClientTlsFiles {
    pub ca_pem: Option<Vec<u8>>,
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTlsFiles {
    pub fn from_env(env: &Env, ca: &str, cert: &str, key: &str) -> Result<Self, ConfigError> {
        let read = |name: &str, path: &str| -> Result<Vec<u8>, ConfigError> {
            fs::read(path).map_err(|e| ConfigError::new(name, path, e))
        };
        let ca_pem = match env.raw(ca) {
            Some(path) => {
                root_store(Path::new(&path)).map_err(|e| ConfigError::new(ca, &path, e))?;
                Some(read(ca, &path)?)
            }
            None => None,
        };
        let identity_pem = match (env.raw(cert), env.raw(key)) {
            (None, None) => None,
            (Some(cert_path), Some(key_path)) => {
                certificates(Path::new(&cert_path))
                    .map_err(|e| ConfigError::new(cert, &cert_path, e))?;
                private_key(Path::new(&key_path))
                    .map_err(|e| ConfigError::new(key, &key_path, e))?;
                Some((read(cert, &cert_path)?, read(key, &key_path)?))
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    key,
                    "",
                    format!("is required with {cert}"),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    cert,
                    "",
                    format!("is required with {key}"),
                ));
            }
        };
        Ok(Self {
            ca_pem,
            identity_pem,
        })
    }
}

/// How outgoing `https://` calls are checked: against the CA in `UPSTREAM_CA_FILE` when
/// set (then only that CA is trusted), else the public web roots; with a client
/// certificate (`UPSTREAM_CLIENT_CERT_FILE`, `UPSTREAM_CLIENT_KEY_FILE`) for upstreams
/// that require mTLS. The files are read at start.
#[derive(Clone, Default)]
pub struct UpstreamTls {
    ca: Option<Certificate>,
    identity: Option<Identity>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("private_ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl UpstreamTls {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let files = ClientTlsFiles::from_env(
            env,
            "UPSTREAM_CA_FILE",
            "UPSTREAM_CLIENT_CERT_FILE",
            "UPSTREAM_CLIENT_KEY_FILE",
        )?;
        Ok(Self {
            ca: files.ca_pem.map(Certificate::from_pem),
            identity: files
                .identity_pem
                .map(|(cert, key)| Identity::from_pem(cert, key)),
        })
    }

    /// Trusting `ca_pem` only, without a client certificate.
    pub fn with_ca(ca_pem: impl AsRef<[u8]>) -> Self {
        Self {
            ca: Some(Certificate::from_pem(ca_pem)),
            identity: None,
        }
    }

    /// Presenting this certificate (PEM chain and key) to upstreams that ask for one.
    pub fn with_identity(mut self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        self.identity = Some(Identity::from_pem(cert_pem, key_pem));
        self
    }

    /// The client configuration for an upstream reached under `host` (the name its
    /// certificate must carry, also when the connection goes to one of its addresses).
    pub fn client_config(&self, host: &str) -> ClientTlsConfig {
        install_default_provider();
        let config = ClientTlsConfig::new().domain_name(host);
        let config = match &self.ca {
            Some(ca) => config.ca_certificate(ca.clone()),
            None => config.with_webpki_roots(),
        };
        match &self.identity {
            Some(identity) => config.identity(identity.clone()),
            None => config,
        }
    }
}
