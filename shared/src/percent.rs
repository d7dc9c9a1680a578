//! Percent-encoding of object keys and URL components, through the `percent-encoding` crate:
//! the one encode set the product uses (RFC 3986 unreserved characters and `/` stay as they
//! are, everything else becomes `%XX` with upper-case hex) and a strict decoder (an escape
//! that is not `%` and two hex digits is refused, not passed through).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Bytes an encoded key keeps as they are: letters, digits, `-`, `_`, `.`, `~` and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// `key` percent-encoded but for unreserved characters and `/` (the S3 `CopySource` header).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

/// `key` as S3 event notifications write it: [`encode_key`] with `+` for a space.
pub fn encode_event_key(key: &str) -> String {
    // A `%20` in the output can only come from a space: a literal `%` is encoded as `%25`.
    encode_key(key).replace("%20", "+")
}

/// Why a component does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space` (S3 event keys, query
/// strings; a `+` that is meant as such arrives as `%2B`).
pub fn decode(s: &str, plus_is_space: bool) -> Result<String, DecodeError> {
    let b = s.as_bytes();
    let well_formed = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| {
            b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    if !well_formed {
        return Err(DecodeError::BadEscape);
    }
    let spaced;
    let s = if plus_is_space && s.contains('+') {
        spaced = s.replace('+', "%20");
        spaced.as_str()
    } else {
        s
    };
    percent_decode_str(s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_unreserved_characters_and_slashes() {
        assert_eq!(
            encode_key("landing/bank a/2026-11-20/x+y~z.csv"),
            "landing/bank%20a/2026-11-20/x%2By~z.csv"
        );
        assert_eq!(
            encode_key("business_date=2026-11-20/Ü%"),
            "business_date%3D2026-11-20/%C3%9C%25"
        );
        assert_eq!(encode_event_key("a b+c/%20"), "a+b%2Bc/%2520");
    }

    #[test]
    fn decoding_is_strict_and_inverts_the_encoding() {
        for key in ["landing/bank a/x+y.csv", "Ü/=&?#%", "plain"] {
            assert_eq!(decode(&encode_key(key), false).as_deref(), Ok(key));
            assert_eq!(decode(&encode_event_key(key), true).as_deref(), Ok(key));
        }
        assert_eq!(decode("a+b%2B", true).as_deref(), Ok("a b+"));
        assert_eq!(decode("a+b", false).as_deref(), Ok("a+b"));
        for bad in ["x%zz", "x%", "x%4", "%+1", "%%41"] {
            assert_eq!(decode(bad, true), Err(DecodeError::BadEscape), "{bad}");
        }
        assert_eq!(decode("%FF", false), Err(DecodeError::NotUtf8));
    }
}
