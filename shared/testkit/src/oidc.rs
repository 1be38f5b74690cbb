//! A real OpenID provider for tests: oauth2-mock-server (installed by
//! `tests/setup/tools-oidc.sh`, which `make test` runs), started on a free loopback port by
//! `tests/setup/oidc/provider.mjs`. It issues client-credentials tokens for the clients a
//! test names (each secret is `<id>-secret`), serves discovery and JWKS, rotates its
//! signing key when told to, and merges a `claims` form field into a token (the test knob
//! for expired, wrong-audience and wrong-issuer tokens).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The provider process; killed when dropped.
pub struct Provider {
    pub issuer: String,
    pub kid: String,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub http: reqwest::Client,
    _child: Child,
}

impl Provider {
    /// A provider whose tokens carry `audience`, for `clients`: a JSON object
    /// `{"<id>": {"secret": "<id>-secret", "roles": [...]}}`.
    pub async fn start(audience: &str, clients: &Value) -> anyhow::Result<Self> {
        let modules = repo().join("target/tools/oidc/node_modules");
        if !modules.join("oauth2-mock-server").exists() {
            bail!(
                "{} is missing: run `make tools` (or `bash tests/setup/tools-oidc.sh`) to install \
                 the OpenID provider the identity tests use",
                modules.display()
            );
        }
        let mut child = Command::new("node")
            .arg(repo().join("tests/setup/oidc/provider.mjs"))
            .arg("--modules")
            .arg(&modules)
            .arg("--audience")
            .arg(audience)
            .arg("--clients")
            .arg(clients.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("node starts (Node 20.19+ is needed)")?;
        let stdin = child.stdin.take().context("provider stdin")?;
        let mut lines = BufReader::new(child.stdout.take().context("provider stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the provider says where it listens within 20 s")??
            .context("the provider printed a line")?;
        let ready: Value = serde_json::from_str(&first)?;
        Ok(Self {
            issuer: ready["issuer"].as_str().context("issuer")?.to_owned(),
            kid: ready["kid"].as_str().context("kid")?.to_owned(),
            stdin,
            lines,
            http: reqwest::Client::new(),
            _child: child,
        })
    }

    /// A new signing key; the provider signs with it from now on. Returns its kid.
    pub async fn rotate(&mut self, alg: &str) -> anyhow::Result<String> {
        self.stdin
            .write_all(format!("rotate {alg}\n").as_bytes())
            .await?;
        let line = self.lines.next_line().await?.context("an answer")?;
        let answer: Value = serde_json::from_str(&line)?;
        Ok(answer["rotated"].as_str().context("rotated")?.to_owned())
    }

    /// A client-credentials token for `client`, with `claims` merged last.
    pub async fn token(
        &self,
        client: &str,
        extra: &[(&str, &str)],
        claims: Value,
    ) -> anyhow::Result<String> {
        let mut form: Vec<(&str, String)> = vec![("grant_type", "client_credentials".into())];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        if claims != Value::Null {
            form.push(("claims", claims.to_string()));
        }
        let response: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&form)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(response["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned())
    }
}
