//! The PII tokenization key from Secrets Manager, read by the functions at start: never in a
//! function's configuration, where anyone allowed to read the function would see it
//! (docs/deploy.md, "The PII key").

use aws_sdk_secretsmanager::Client;

use super::sdk_error;
use crate::error::{Error, Result};
use crate::pii::PiiKey;

/// The current version of the secret `secret_id` (name or ARN) as the tokenization key: its
/// `SecretString`, at least 16 bytes ([`PiiKey::new`]).
pub async fn pii_key(client: &Client, secret_id: &str) -> Result<PiiKey> {
    Ok(pii_key_version(client, secret_id).await?.1)
}

/// [`pii_key`] with the secret's version id (a rotation makes a new one).
pub async fn pii_key_version(client: &Client, secret_id: &str) -> Result<(String, PiiKey)> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| sdk_error("secretsmanager", "GetSecretValue", e))?;
    let value = out.secret_string().ok_or_else(|| Error::InvalidConfig {
        name: secret_id.to_string(),
        reason:
            "the secret has no SecretString: store the key as text (e.g. `openssl rand -hex 32`)"
                .into(),
    })?;
    let key = PiiKey::new(value.as_bytes()).map_err(|e| Error::InvalidConfig {
        name: secret_id.to_string(),
        reason: e.to_string(),
    })?;
    Ok((out.version_id().unwrap_or_default().to_string(), key))
}
