//! What the local runtime supplies that AWS would: the bucket's name in the events it builds
//! and the PII tokenization key.

use recon_shared::Result;
use recon_shared::pii::PiiKey;

/// Tokenization key used when [`recon_shared::pii::PII_KEY_ENV`] is not set: local development only.
const LOCAL_DEV_PII_KEY: &[u8] = b"recon-local-development-key-not-for-production";

/// Bucket name put into locally built events.
pub const LOCAL_BUCKET: &str = "recon-local";

/// The PII key from the environment, or the local development key.
pub fn local_pii_key() -> Result<PiiKey> {
    match recon_shared::config::Settings::from_env()?.pii_key {
        Some(key) => Ok(key),
        None => PiiKey::new(LOCAL_DEV_PII_KEY),
    }
}
