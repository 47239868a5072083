//! The `External` credential mode of the `aliyun` CLI: run the profile's `process_command` and
//! read the credentials it prints as JSON (`{"mode":"AK"|"StsToken","access_key_id":…,
//! "access_key_secret":…,"sts_token":…,"expiration":"2025-01-01T00:00:00Z"}`), the format
//! Alibaba's credentials library reads.

use std::fmt;
use std::time::Duration;

use reqsign_aliyun_oss::Credential;
use reqsign_core::{Context, ProvideCredential};
use serde::Deserialize;

/// How long the command may run (Alibaba's credentials library: 60 s).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a command for credentials.
pub struct ExternalProcess {
    /// The command line, split as a POSIX shell would (no shell runs it).
    pub command: String,
}

impl fmt::Debug for ExternalProcess {
    // The command line may carry a secret in an argument: show the program only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalProcess")
            .field(
                "program",
                &self.command.split_whitespace().next().unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Printed {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    expiration: String,
}

fn fail(msg: String) -> reqsign_core::Error {
    reqsign_core::Error::unexpected(msg)
}

impl ProvideCredential for ExternalProcess {
    type Credential = Credential;

    async fn provide_credential(&self, _ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        let argv = shlex::split(&self.command)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| fail("process_command is empty or not a valid command line".into()))?;
        let program = argv[0].clone();
        let run = tokio::process::Command::new(&program)
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(TIMEOUT, run)
            .await
            .map_err(|_| {
                fail(format!(
                    "{program} did not finish within {}s",
                    TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!("{program} failed ({})", out.status)));
        }
        // Its output holds the secret: never quoted in an error.
        let p: Printed = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("{program} printed no credentials JSON ({e})")))?;
        if p.access_key_id.is_empty() || p.access_key_secret.is_empty() {
            return Err(fail(format!(
                "{program} printed no access_key_id or access_key_secret"
            )));
        }
        if p.mode == "StsToken" && p.sts_token.is_empty() {
            return Err(fail(format!(
                "{program} printed mode StsToken without sts_token"
            )));
        }
        let expires_in = if p.expiration.is_empty() {
            None
        } else {
            Some(p.expiration.parse().map_err(|_| {
                fail(format!(
                    "{program} printed an expiration that is not yyyy-mm-ddThh:mm:ssZ"
                ))
            })?)
        };
        Ok(Some(Credential {
            access_key_id: p.access_key_id,
            access_key_secret: p.access_key_secret,
            security_token: (!p.sts_token.is_empty()).then_some(p.sts_token),
            expires_in,
        }))
    }
}
