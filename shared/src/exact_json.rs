//! JSON objects read with every value as the text it was written in: a number exactly as its
//! digits (never through `f64`: `99999999999999.99` stays that, not `100000000000000.0`), a
//! string unescaped, and an object that names a key twice refused (serde_json's `Value` keeps
//! the last one silently).
//!
//! Built on serde_json's `RawValue`: a member's value is a slice of the input, parsed no further
//! than needed. Nested objects are read the same way, so paths like `amount.value` resolve
//! exactly too, and arrays are walked for duplicated keys inside them.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// One JSON object: its members in the order written, each key once.
#[derive(Debug)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, Member<'a>)>,
}

/// A member's value: its JSON text, and the object it holds when it is one.
#[derive(Debug)]
pub struct Member<'a> {
    raw: &'a RawValue,
    object: Option<Object<'a>>,
}

/// Why a text is not one JSON object with unique keys. The messages never quote a value.
#[derive(Debug)]
pub enum JsonError {
    /// Not JSON (serde_json's message: position and what was expected).
    Syntax(serde_json::Error),
    /// Valid JSON, but not an object.
    NotObject,
    /// A key appears twice in one object; `path` is the dotted path of the object's member
    /// (keys of arrays' objects are reached with `[]`).
    DuplicateKey {
        /// Dotted path of the repeated key, e.g. `payload.items[].id`.
        path: String,
    },
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(e) => write!(f, "{e}"),
            Self::NotObject => f.write_str("line is not a JSON object"),
            Self::DuplicateKey { path } => write!(f, "key `{path}` appears twice"),
        }
    }
}

impl<'a> Object<'a> {
    /// Parses `text`, which must hold one JSON object, checking every object in it (at any
    /// depth, arrays included) for a key given twice.
    pub fn parse(text: &'a str) -> Result<Self, JsonError> {
        if !text.trim_start().starts_with('{') {
            return Err(match serde_json::from_str::<&RawValue>(text) {
                Ok(_) => JsonError::NotObject,
                Err(e) => JsonError::Syntax(e),
            });
        }
        let raw: Raw<'a> = serde_json::from_str(text).map_err(JsonError::Syntax)?;
        Self::build(raw.0, "")
    }

    fn build(raw: Vec<(Cow<'a, str>, &'a RawValue)>, at: &str) -> Result<Self, JsonError> {
        let mut seen = BTreeSet::new();
        let mut members = Vec::with_capacity(raw.len());
        for (key, value) in raw {
            let path = if at.is_empty() {
                key.to_string()
            } else {
                format!("{at}.{key}")
            };
            if !seen.insert(key.clone()) {
                return Err(JsonError::DuplicateKey { path });
            }
            let object = nested(value, &path)?;
            members.push((key, Member { raw: value, object }));
        }
        Ok(Self { members })
    }

    /// The member named `key`.
    pub fn get(&self, key: &str) -> Option<&Member<'a>> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, m)| m)
    }

    /// The member at a dotted path (`amount.value`).
    pub fn path(&self, path: &str) -> Option<&Member<'a>> {
        let mut parts = path.split('.');
        let mut member = self.get(parts.next()?)?;
        for key in parts {
            member = member.object.as_ref()?.get(key)?;
        }
        Some(member)
    }

    /// Members in the order written.
    pub fn members(&self) -> impl Iterator<Item = (&str, &Member<'a>)> {
        self.members.iter().map(|(k, m)| (k.as_ref(), m))
    }
}

impl<'a> Member<'a> {
    /// The value as text: a string unescaped, a number as written, `true`/`false`, an object
    /// or array as its JSON text; `None` for `null`.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        let t = self.raw.get();
        match t.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<Text<'a>>(t).ok().map(|s| s.0),
            Some(b'n') => None,
            _ => Some(Cow::Borrowed(t)),
        }
    }

    /// The value's JSON text as written.
    pub fn json(&self) -> &'a str {
        self.raw.get()
    }

    /// The object this member holds, if it is one.
    pub fn object(&self) -> Option<&Object<'a>> {
        self.object.as_ref()
    }
}

/// Reads a nested value: an object becomes an [`Object`]; an array's elements are checked.
fn nested<'a>(value: &'a RawValue, path: &str) -> Result<Option<Object<'a>>, JsonError> {
    match value.get().as_bytes().first() {
        Some(b'{') => {
            let raw: Raw<'a> = serde_json::from_str(value.get()).map_err(JsonError::Syntax)?;
            Ok(Some(Object::build(raw.0, path)?))
        }
        Some(b'[') => {
            let items: Vec<&'a RawValue> =
                serde_json::from_str(value.get()).map_err(JsonError::Syntax)?;
            let inner = format!("{path}[]");
            for item in items {
                nested(item, &inner)?;
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object's members as written, duplicates included (checked by [`Object::build`]).
struct Raw<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    out.push((k.0, v));
                }
                Ok(Raw(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(o: &Object<'a>, path: &str) -> Option<Cow<'a, str>> {
        o.path(path).and_then(Member::text)
    }

    #[test]
    fn numbers_keep_their_digits_and_strings_are_unescaped() -> Result<(), JsonError> {
        let line = r#"{"a": 99999999999999.99, "b": {"value": 0.12345678901234567890, "c": "x\"y"},
                       "n": null, "t": true, "big": 123456789012345678901234567890, "e": 1e3}"#;
        let o = Object::parse(line)?;
        assert_eq!(text(&o, "a").as_deref(), Some("99999999999999.99"));
        assert_eq!(
            text(&o, "b.value").as_deref(),
            Some("0.12345678901234567890")
        );
        assert_eq!(text(&o, "b.c").as_deref(), Some("x\"y"));
        assert_eq!(text(&o, "n"), None);
        assert_eq!(text(&o, "t").as_deref(), Some("true"));
        assert_eq!(
            text(&o, "big").as_deref(),
            Some("123456789012345678901234567890")
        );
        assert_eq!(text(&o, "e").as_deref(), Some("1e3"));
        assert!(o.path("b.missing").is_none() && o.path("a.x").is_none());
        assert!(matches!(text(&o, "b.c"), Some(Cow::Owned(_))));
        assert!(matches!(text(&o, "t"), Some(Cow::Borrowed(_))));
        Ok(())
    }

    #[test]
    fn a_key_given_twice_at_any_depth_is_refused() {
        for (line, path) in [
            (r#"{"a":1,"a":2}"#, "a"),
            (r#"{"x":{"v":1,"v":1}}"#, "x.v"),
            (r#"{"l":[{"k":1},{"k":1,"k":2}]}"#, "l[].k"),
            (r#"{"a\u0062":1,"ab":2}"#, "ab"),
        ] {
            let got = Object::parse(line);
            assert!(
                matches!(&got, Err(JsonError::DuplicateKey { path: p }) if p == path),
                "{line}: {got:?}"
            );
        }
        assert!(Object::parse(r#"{"a":{"k":1},"b":{"k":1}}"#).is_ok());
    }

    #[test]
    fn other_json_is_refused_with_a_reason() {
        assert!(matches!(Object::parse("[1,2]"), Err(JsonError::NotObject)));
        assert!(matches!(Object::parse("7"), Err(JsonError::NotObject)));
        assert!(matches!(
            Object::parse(r#"{"a":"#),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(Object::parse("nope"), Err(JsonError::Syntax(_))));
        assert!(matches!(
            Object::parse(r#"{"a":1} x"#),
            Err(JsonError::Syntax(_))
        ));
    }
}
