//! The character encoding a source declares for its files (`encoding` in the source mapping),
//! and the decoding to UTF-8 every reader starts from.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Character encoding of a source's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Encoding {
    /// UTF-8, a byte order mark skipped (the default).
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// ISO 8859-1: every byte is the character of that code point.
    #[serde(rename = "latin-1", alias = "iso-8859-1")]
    Latin1,
    /// Windows-1252: Latin-1 with printable characters (`€`, `‚`, `Š`…) at 0x80–0x9F.
    #[serde(rename = "windows-1252", alias = "cp1252")]
    Windows1252,
}

impl Encoding {
    /// Whether this is the default (mapping files leave it out).
    pub fn is_default(&self) -> bool {
        *self == Self::Utf8
    }
}

/// Windows-1252 characters at 0x80–0x9F (`None`: unassigned, read as the Latin-1 control).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The file as UTF-8 bytes: a UTF-8 byte order mark skipped, Latin-1 and Windows-1252 decoded
/// (pure ASCII is returned as it is). UTF-8 is not checked here: each reader reports invalid
/// bytes its own way.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Cow<'_, [u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if encoding == Encoding::Utf8 || bytes.is_ascii() {
        return Cow::Borrowed(bytes);
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for &b in bytes {
        let c = match (encoding, b) {
            (Encoding::Windows1252, 0x80..=0x9F) => {
                CP1252_HIGH[usize::from(b - 0x80)].unwrap_or(char::from(b))
            }
            _ => char::from(b),
        };
        out.push(c);
    }
    Cow::Owned(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_1_and_windows_1252_become_utf_8() {
        assert_eq!(
            &*decode(b"M\xfcller \x80 5", Encoding::Latin1),
            "Müller \u{80} 5".as_bytes()
        );
        assert_eq!(
            &*decode(b"M\xfcller \x80 5", Encoding::Windows1252),
            "Müller € 5".as_bytes()
        );
        assert_eq!(
            &*decode("\u{feff}Grüße".as_bytes(), Encoding::Utf8),
            "Grüße".as_bytes()
        );
        assert!(matches!(
            decode(b"plain", Encoding::Latin1),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn mapping_names_parse() -> crate::error::Result<()> {
        for (name, e) in [
            ("\"utf-8\"", Encoding::Utf8),
            ("\"latin-1\"", Encoding::Latin1),
            ("\"iso-8859-1\"", Encoding::Latin1),
            ("\"windows-1252\"", Encoding::Windows1252),
        ] {
            assert_eq!(serde_json::from_str::<Encoding>(name)?, e);
        }
        Ok(())
    }
}
