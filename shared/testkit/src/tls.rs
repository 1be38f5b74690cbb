//! Certificates and TLS back-ends for transport-security tests. A [`TestCa`] (rcgen) issues
//! server and client certificates as PEM files in a directory of its own; [`TlsRedis`] is
//! a Redis that speaks only TLS and [`TlsPostgres`] a private PostgreSQL with `ssl=on`
//! whose `pg_hba.conf` admits TLS connections only, both on a spare loopback port for one
//! test and stopped when dropped. They need `redis-server` and PostgreSQL's server
//! binaries, which `tests/setup/backends.sh` installs.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::process::{Child, Command};

/// A certificate authority for one test, with the directory its files are written to
/// (removed when dropped).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A certificate and its key, as files and as PEM text.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name`; its certificate is written to `ca.pem`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("aftersales-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        std::fs::write(dir.join("ca.pem"), pem_of("CERTIFICATE", issuer.der()))?;
        Ok(Self { issuer, dir })
    }

    /// The directory the CA writes its files to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn ca_pem(&self) -> String {
        pem_of("CERTIFICATE", self.issuer.der())
    }

    /// A certificate for `names` (DNS names or IP addresses), good for servers and
    /// clients, written to `<file>.pem` and `<file>.key`.
    pub fn issue(&self, file: &str, names: &[&str]) -> anyhow::Result<CertFiles> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or(file));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
            cert_pem: pem_of("CERTIFICATE", cert.der()),
            key_pem: pem_of("PRIVATE KEY", &key.serialize_der()),
        };
        std::fs::write(&files.cert, &files.cert_pem)?;
        std::fs::write(&files.key, &files.key_pem)?;
        Ok(files)
    }
}

fn pem_of(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_port(port: u16, what: &str, child: &mut Child) -> anyhow::Result<()> {
    for _ in 0..150 {
        if let Some(exit) = child.try_wait()? {
            bail!("{what} exited at start: {exit}");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 15 s")
}

/// A Redis on loopback that accepts TLS connections only (no client certificate needed),
/// with a certificate for `localhost` and `127.0.0.1` issued by the test's CA.
pub struct TlsRedis {
    child: Child,
    pub port: u16,
}

impl TlsRedis {
    pub async fn start(ca: &TestCa) -> anyhow::Result<Self> {
        let cert = ca.issue("redis", &["localhost", "127.0.0.1"])?;
        let port = free_port()?;
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .arg("--tls-port")
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&cert.cert)
            .arg("--tls-key-file")
            .arg(&cert.key)
            .arg("--tls-ca-cert-file")
            .arg(ca.ca_file())
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(ca.dir())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("redis-server not found: run tests/setup/backends.sh (make test does)")?;
        wait_for_port(port, "redis-server with TLS", &mut child).await?;
        Ok(Self { child, port })
    }

    /// `rediss://localhost:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A private PostgreSQL on loopback with `ssl=on` whose `pg_hba.conf` admits `hostssl`
/// connections only (user `postgres`, no password), its certificate for `localhost` and
/// `127.0.0.1` issued by the test's CA. Run as the `postgres` user when the test runs as
/// root (PostgreSQL refuses root).
pub struct TlsPostgres {
    child: Child,
    pub port: u16,
}

/// The newest PostgreSQL server binaries Debian installed.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed: run tests/setup/backends.sh (make test does)")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no /usr/lib/postgresql/<version>/bin/postgres")
}

async fn id(args: &[&str]) -> anyhow::Result<u32> {
    let out = Command::new("id").args(args).output().await?;
    if !out.status.success() {
        bail!("id {args:?} failed");
    }
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

impl TlsPostgres {
    pub async fn start(ca: &TestCa) -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let cert = ca.issue("postgres", &["localhost", "127.0.0.1"])?;
        let data = ca.dir().join("pgdata");
        let port = free_port()?;
        // The server's key must be private to the user PostgreSQL runs as.
        std::fs::set_permissions(&cert.key, std::fs::Permissions::from_mode(0o600))?;
        let run_as = if id(&["-u"]).await? == 0 {
            let user = (
                id(&["-u", "postgres"]).await?,
                id(&["-g", "postgres"]).await?,
            );
            let owned = Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", user.0, user.1))
                .arg(ca.dir())
                .status()
                .await?;
            if !owned.success() {
                bail!("chown of {} failed", ca.dir().display());
            }
            Some(user)
        } else {
            None
        };
        let command = |program: &str| {
            let mut command = Command::new(bin.join(program));
            if let Some((uid, gid)) = run_as {
                command.uid(uid).gid(gid);
            }
            command
        };
        let made = command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .await
            .context("initdb")?;
        if !made.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&made.stderr));
        }
        // TLS or nothing: no `host` line admits a plaintext connection.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )?;
        let mut child = command("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-c")
            .arg(format!("port={port}"))
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "ssl=on",
                "-c",
                "fsync=off",
            ])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", ca.dir().display()))
            .arg("-c")
            .arg(format!("ssl_cert_file={}", cert.cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", cert.key.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting postgres")?;
        wait_for_port(port, "postgres with TLS", &mut child).await?;
        for _ in 0..100 {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .await?;
            if ready.success() {
                return Ok(Self { child, port });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("postgres with TLS did not accept connections within 10 s")
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // Immediate shutdown: the server's children exit with it.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
        }
    }
}
