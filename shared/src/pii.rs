//! PII handling: raw user ids become keyed HMAC-SHA256 tokens at the first component that sees
//! them. The key comes from configuration (a secret in AWS) and is never logged or printed.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::ids::UserId;

/// Environment key holding the tokenization secret (hex or text, at least 16 bytes).
pub const PII_KEY_ENV: &str = "RECON_PII_HMAC_KEY";

/// Prefix of every user token, so a token is never mistaken for a raw id.
pub const TOKEN_PREFIX: &str = "utk_";

/// The tokenization secret. `Debug` does not reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct PiiKey(Vec<u8>);

impl PiiKey {
    /// Wraps a tokenization secret; refused (`InvalidConfig`) when shorter than 16 bytes.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 16 {
            return Err(Error::InvalidConfig {
                name: PII_KEY_ENV.into(),
                reason: "the key must be at least 16 bytes".into(),
            });
        }
        Ok(Self(secret.to_vec()))
    }

    /// The keyed, deterministic token of a user id: `utk_` + 32 hex digits.
    pub fn tokenize(&self, user: &UserId) -> String {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            // HMAC accepts keys of any length; this arm cannot be reached.
            Err(_) => return format!("{TOKEN_PREFIX}invalid"),
        };
        mac.update(user.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{TOKEN_PREFIX}{}", hex::encode(&digest[..16]))
    }
}

impl PiiKey {
    /// The key with its HMAC key schedule done once, for tokenizing many ids (the stream
    /// indexer); gives the same tokens as [`PiiKey::tokenize`].
    pub fn tokenizer(&self) -> Tokenizer {
        Tokenizer(<Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).ok())
    }
}

/// A keyed HMAC ready to tokenize. `Debug` does not reveal it.
#[derive(Clone)]
pub struct Tokenizer(Option<Hmac<Sha256>>);

impl Tokenizer {
    /// Same as [`PiiKey::tokenize`].
    pub fn tokenize(&self, user: &UserId) -> String {
        let Some(base) = &self.0 else {
            return format!("{TOKEN_PREFIX}invalid");
        };
        let mut mac = base.clone();
        mac.update(user.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(TOKEN_PREFIX.len() + 32);
        out.push_str(TOKEN_PREFIX);
        out.push_str(&hex::encode(&digest[..16]));
        out
    }
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokenizer(<redacted>)")
    }
}

impl fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PiiKey(<redacted>)")
    }
}

/// Whether a value looks like a user token (not a raw id).
pub fn is_token(value: &str) -> bool {
    value.len() == TOKEN_PREFIX.len() + 32
        && value.starts_with(TOKEN_PREFIX)
        && value[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_keyed_deterministic_and_hide_the_id() -> Result<()> {
        let k1 = PiiKey::new(b"0123456789abcdef-key-one")?;
        let k2 = PiiKey::new(b"0123456789abcdef-key-two")?;
        let u = UserId::new("U00000042")?;
        let t = k1.tokenize(&u);
        assert!(is_token(&t), "{t}");
        assert_eq!(t, k1.tokenize(&u));
        assert_ne!(t, k2.tokenize(&u));
        assert!(!t.contains("U00000042"));
        assert_ne!(t, k1.tokenize(&UserId::new("U00000043")?));
        assert!(PiiKey::new(b"short").is_err());
        assert_eq!(format!("{k1:?}"), "PiiKey(<redacted>)");
        assert_eq!(k1.tokenizer().tokenize(&u), t);
        assert_eq!(format!("{:?}", k1.tokenizer()), "Tokenizer(<redacted>)");
        Ok(())
    }
}
