//! The day's FX table (`config/fx/{date}.csv`) as the normalizer and the close read it.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::ids::BusinessDate;
use crate::keys::fx_key;
use crate::money::FxTable;
use crate::ports::{ObjectStore, get_opt};

/// A day's FX table as delivered.
#[derive(Debug, Default)]
pub struct DayFx {
    /// The table; empty when none was delivered (same-currency days) or it cannot be used.
    pub table: FxTable,
    /// The delivered bytes (part of the fingerprint, also when they are bad).
    pub bytes: Option<Bytes>,
    /// Why the delivered table cannot be used (its key, and the reason naming the line):
    /// only what needs a conversion fails with it.
    pub problem: Option<(String, String)>,
}

impl DayFx {
    /// The table, for something that needs a conversion: fails when it cannot be used.
    pub fn needed(&self) -> Result<&FxTable> {
        match &self.problem {
            Some((name, reason)) => Err(Error::InvalidConfig {
                name: name.clone(),
                reason: format!(
                    "{reason} (needed for amounts in another currency than the settlement currency)"
                ),
            }),
            None => Ok(&self.table),
        }
    }
}

/// The day's FX table (`config/fx/{date}.csv`).
pub async fn load_fx<S: ObjectStore>(store: &S, date: BusinessDate) -> Result<DayFx> {
    let key = fx_key(date);
    let Some(bytes) = get_opt(store, &key).await? else {
        return Ok(DayFx::default());
    };
    Ok(match FxTable::from_file(&key, &bytes) {
        Ok(table) => DayFx {
            table,
            bytes: Some(bytes),
            problem: None,
        },
        Err(e) => {
            tracing::warn!(file = %key, "invalid FX table: {e}");
            let reason = match e {
                Error::InvalidConfig { reason, .. } => reason,
                e => e.to_string(),
            };
            DayFx {
                table: FxTable::default(),
                bytes: Some(bytes),
                problem: Some((key, reason)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStore;

    #[tokio::test]
    async fn a_bad_fx_table_is_kept_with_its_reason_for_what_needs_it() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = LocalStore::new(dir.path());
        let date = BusinessDate::parse("2026-11-20")?;
        assert!(load_fx(&store, date).await?.needed()?.is_empty());
        let bad = "base,quote,rate\nEUR,USD,1.08\nUSD,EUR,-0.9\n";
        store.put(&fx_key(date), Bytes::from(bad)).await?;
        let fx = load_fx(&store, date).await?;
        assert!(fx.bytes.is_some() && fx.table.is_empty());
        let e = fx.needed().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("config/fx/2026-11-20.csv")
                && e.contains("line 3:")
                && e.contains("must be positive"),
            "{e}"
        );
        Ok(())
    }
}
