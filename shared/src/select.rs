//! Which adapters a process uses, chosen once from its [`Settings`]: the AWS adapters when
//! [`config::BUCKET_ENV`] is set (crate feature `aws`), the local ones when
//! [`config::DATA_DIR_ENV`] is. The `Any*` types implement the ports over either, so a
//! function's `main` builds its ports once and hands them to the same handler.

use std::path::PathBuf;

use bytes::Bytes;

use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::ids::{BusinessDate, MerchantId, SourceId, TransactionId};
use crate::index_item::{IndexItem, MerchantDayTotals};
use crate::local::{
    LocalBreakLog, LocalCatalog, LocalManifests, LocalRules, LocalRuns, LocalStore,
};
use crate::local_index::LocalTransactionIndex;
use crate::ports::{
    Catalog, ConditionalPut, FileRecord, IndexPage, IndexQuery, ManifestTable, ObjectInfo,
    ObjectStore, Partition, PutOutcome, RunRecord, RunsTable, SettlementUpdate, TransactionIndex,
};

/// Where the ports live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A directory plays the bucket; tables under `state/`.
    Local(PathBuf),
    /// S3, DynamoDB, Glue, Lambda and Step Functions of one deployment.
    #[cfg(feature = "aws")]
    Aws(Box<AwsBackend>),
}

/// The shared SDK configuration and the resource names of the deployment.
#[cfg(feature = "aws")]
#[derive(Debug, Clone)]
pub struct AwsBackend {
    /// Region, endpoint, credentials and retry settings every client is built from.
    pub sdk: aws_config::SdkConfig,
    /// The deployment's bucket ([`config::BUCKET_ENV`]).
    pub bucket: String,
    /// One DynamoDB client shared by the Manifests, Runs and TransactionIndex adapters.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Table and function names, upload sizes.
    pub settings: Settings,
}

/// Whether a process opens the TransactionIndex to write (one local writer at a time) or to
/// read only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMode {
    /// May write; locally this takes the single-writer lock (the stream indexer).
    Writer,
    /// Reads only; locally any number of readers may open it.
    ReadOnly,
}

impl Backend {
    /// A data directory given on the command line, else the deployment the environment names
    /// ([`Self::from_settings`] of [`Settings::from_env`]).
    pub async fn from_data_or_env(data: Option<PathBuf>) -> Result<Self> {
        match data {
            Some(dir) => Ok(Self::Local(dir)),
            None => Self::from_settings(&Settings::from_env()?).await,
        }
    }

    /// From the settings: [`config::BUCKET_ENV`] (AWS) or else [`config::DATA_DIR_ENV`].
    pub async fn from_settings(settings: &Settings) -> Result<Self> {
        match (&settings.bucket, &settings.data_dir) {
            (Some(bucket), _) => Self::aws_from_settings(bucket, settings).await,
            (None, Some(dir)) => Ok(Self::Local(dir.clone())),
            (None, None) => Err(Error::InvalidConfig {
                name: format!("{} or {}", config::BUCKET_ENV, config::DATA_DIR_ENV),
                reason: "set one: the bucket on AWS, or a directory that plays it locally".into(),
            }),
        }
    }

    #[cfg(feature = "aws")]
    async fn aws_from_settings(bucket: &str, settings: &Settings) -> Result<Self> {
        let sdk = crate::aws::sdk_config(&crate::aws::AwsSettings::from_settings(settings)).await;
        Ok(Self::aws(sdk, bucket, settings.clone()))
    }

    #[cfg(not(feature = "aws"))]
    async fn aws_from_settings(_bucket: &str, _settings: &Settings) -> Result<Self> {
        Err(Error::InvalidConfig {
            name: config::BUCKET_ENV.into(),
            reason: "this binary was built without the `aws` feature; set RECON_DATA_DIR".into(),
        })
    }

    /// The PII tokenization key: [`config::PII_SECRET_ENV`]'s secret from Secrets Manager on
    /// AWS (read once, at the function's start), else [`crate::pii::PII_KEY_ENV`] (local runs and
    /// tests).
    pub async fn pii_key(&self, settings: &Settings) -> Result<crate::pii::PiiKey> {
        match (self, &settings.pii_secret) {
            #[cfg(feature = "aws")]
            (Self::Aws(a), Some(secret)) => {
                crate::aws::secrets::pii_key(&aws_sdk_secretsmanager::Client::new(&a.sdk), secret)
                    .await
            }
            _ => settings.pii_key(),
        }
    }

    /// The PII key of a long-lived function: [`Self::pii_key`] now, read again once older
    /// than `ttl_ms` ([`PiiKeySource::get`]).
    pub async fn pii_key_source(
        &self,
        settings: &Settings,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<PiiKeySource> {
        let fetch = match (self, &settings.pii_secret) {
            #[cfg(feature = "aws")]
            (Self::Aws(a), Some(secret)) => KeyFetch::Secret {
                client: aws_sdk_secretsmanager::Client::new(&a.sdk),
                secret: secret.clone(),
            },
            _ => KeyFetch::Fixed,
        };
        let (version, key) = fetch.read(settings).await?;
        Ok(PiiKeySource {
            fetch,
            settings: settings.clone(),
            ttl_ms,
            cached: std::sync::Mutex::new((now_ms, version, key)),
        })
    }

    /// The AWS backend over `bucket`, its clients built from `sdk`.
    #[cfg(feature = "aws")]
    pub fn aws(sdk: aws_config::SdkConfig, bucket: impl Into<String>, settings: Settings) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        Self::Aws(Box::new(AwsBackend {
            sdk,
            bucket: bucket.into(),
            dynamodb,
            settings,
        }))
    }

    /// The normalizer function the validator hands accepted deliveries to
    /// ([`config::NORMALIZER_FUNCTION_ENV`]), on AWS. Locally there is none: the validator's
    /// response carries the requests and the local runner calls the normalizer itself.
    #[cfg(feature = "aws")]
    pub fn normalizer(&self) -> Result<Option<crate::aws::lambda::NormalizerInvoker>> {
        Ok(match self {
            Self::Local(_) => None,
            Self::Aws(a) => Some(crate::aws::lambda::NormalizerInvoker::new(
                &a.sdk,
                Settings::required(
                    &a.settings.normalizer_function,
                    config::NORMALIZER_FUNCTION_ENV,
                )?,
            )),
        })
    }

    /// The bucket: the data directory locally, S3 on AWS.
    pub fn store(&self) -> Result<AnyStore> {
        Ok(match self {
            Self::Local(dir) => AnyStore::Local(LocalStore::new(dir)),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyStore::S3(crate::aws::s3::S3Store::from_conf(
                &a.sdk,
                &a.bucket,
                crate::aws::s3::UploadSettings::from_settings(&a.settings),
            )),
        })
    }

    /// The Manifests table; on AWS it needs [`config::MANIFESTS_TABLE_ENV`].
    pub fn manifests(&self) -> Result<AnyManifests> {
        Ok(match self {
            Self::Local(dir) => AnyManifests::Local(LocalManifests::new(dir)),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyManifests::Dynamo(crate::aws::dynamo::DynamoManifests::new(
                a.dynamodb.clone(),
                Settings::required(&a.settings.manifests_table, config::MANIFESTS_TABLE_ENV)?,
            )),
        })
    }

    /// The Runs table of the daily close; on AWS it needs [`config::RUNS_TABLE_ENV`].
    pub fn runs(&self) -> Result<AnyRuns> {
        Ok(match self {
            Self::Local(dir) => AnyRuns::Local(LocalRuns::new(dir)),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyRuns::Dynamo(crate::aws::dynamo::DynamoRuns::new(
                a.dynamodb.clone(),
                Settings::required(&a.settings.runs_table, config::RUNS_TABLE_ENV)?,
            )),
        })
    }

    /// The BreakActions table; on AWS it needs [`config::BREAK_ACTIONS_TABLE_ENV`].
    pub fn break_log(&self) -> Result<AnyBreakLog> {
        Ok(match self {
            Self::Local(dir) => AnyBreakLog::Local(LocalBreakLog::new(dir)),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyBreakLog::Dynamo(crate::aws::dynamo::DynamoBreakLog::new(
                a.dynamodb.clone(),
                Settings::required(
                    &a.settings.break_actions_table,
                    config::BREAK_ACTIONS_TABLE_ENV,
                )?,
            )),
        })
    }

    /// The Rules table; on AWS it needs [`config::RULES_TABLE_ENV`].
    pub fn rules(&self) -> Result<AnyRules> {
        Ok(match self {
            Self::Local(dir) => AnyRules::Local(LocalRules::new(dir)),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyRules::Dynamo(crate::aws::dynamo::DynamoRules::new(
                a.dynamodb.clone(),
                Settings::required(&a.settings.rules_table, config::RULES_TABLE_ENV)?,
            )),
        })
    }

    /// The table catalog: JSON documents locally, the Glue database on AWS.
    pub fn catalog(&self) -> Result<AnyCatalog> {
        Ok(match self {
            Self::Local(dir) => AnyCatalog::Local(LocalCatalog::new(dir)),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyCatalog::Glue(crate::aws::glue::GlueCatalog::new(
                aws_sdk_glue::Client::new(&a.sdk),
                a.bucket.clone(),
            )),
        })
    }

    /// The TransactionIndex, opened in `mode`; on AWS it needs
    /// [`config::TRANSACTION_INDEX_TABLE_ENV`].
    pub fn index(&self, mode: IndexMode) -> Result<AnyIndex> {
        Ok(match self {
            Self::Local(dir) => AnyIndex::Local(match mode {
                IndexMode::Writer => LocalTransactionIndex::open(dir)?,
                IndexMode::ReadOnly => LocalTransactionIndex::open_read_only(dir)?,
            }),
            #[cfg(feature = "aws")]
            Self::Aws(a) => AnyIndex::Dynamo(crate::aws::dynamo::DynamoTransactionIndex::new(
                a.dynamodb.clone(),
                Settings::required(
                    &a.settings.transaction_index_table,
                    config::TRANSACTION_INDEX_TABLE_ENV,
                )?,
            )),
        })
    }
}

/// The [`ObjectStore`] of either backend.
#[derive(Debug)]
pub enum AnyStore {
    /// A directory playing the bucket.
    Local(LocalStore),
    /// The S3 bucket.
    #[cfg(feature = "aws")]
    S3(crate::aws::s3::S3Store),
}

impl ObjectStore for AnyStore {
    async fn get(&self, key: &str) -> Result<Bytes> {
        match self {
            Self::Local(s) => s.get(key).await,
            #[cfg(feature = "aws")]
            Self::S3(s) => s.get(key).await,
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        match self {
            Self::Local(s) => s.put(key, bytes).await,
            #[cfg(feature = "aws")]
            Self::S3(s) => s.put(key, bytes).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        match self {
            Self::Local(s) => s.list(prefix).await,
            #[cfg(feature = "aws")]
            Self::S3(s) => s.list(prefix).await,
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        match self {
            Self::Local(s) => s.copy(from, to).await,
            #[cfg(feature = "aws")]
            Self::S3(s) => s.copy(from, to).await,
        }
    }

    async fn sha256(&self, key: &str) -> Result<String> {
        match self {
            Self::Local(s) => s.sha256(key).await,
            #[cfg(feature = "aws")]
            Self::S3(s) => s.sha256(key).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Self::Local(s) => s.delete(key).await,
            #[cfg(feature = "aws")]
            Self::S3(s) => s.delete(key).await,
        }
    }
}

/// The [`ManifestTable`] of either backend.
#[derive(Debug)]
pub enum AnyManifests {
    /// JSON documents under the data directory's `state/`.
    Local(LocalManifests),
    /// The DynamoDB Manifests table.
    #[cfg(feature = "aws")]
    Dynamo(crate::aws::dynamo::DynamoManifests),
}

impl ManifestTable for AnyManifests {
    async fn delivery(&self, source: &SourceId, date: BusinessDate) -> Result<Vec<FileRecord>> {
        match self {
            Self::Local(t) => t.delivery(source, date).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.delivery(source, date).await,
        }
    }

    async fn put(&self, records: &[FileRecord]) -> Result<()> {
        match self {
            Self::Local(t) => t.put(records).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.put(records).await,
        }
    }
}

/// The [`RunsTable`] of either backend.
#[derive(Debug)]
pub enum AnyRuns {
    /// JSON documents under the data directory's `state/`.
    Local(LocalRuns),
    /// The DynamoDB Runs table.
    #[cfg(feature = "aws")]
    Dynamo(crate::aws::dynamo::DynamoRuns),
}

impl RunsTable for AnyRuns {
    async fn put(&self, record: &RunRecord) -> Result<()> {
        match self {
            Self::Local(t) => t.put(record).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.put(record).await,
        }
    }

    async fn runs(&self, date: BusinessDate) -> Result<Vec<RunRecord>> {
        match self {
            Self::Local(t) => t.runs(date).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.runs(date).await,
        }
    }
}

/// The [`crate::ports::BreakLog`] of either backend.
#[derive(Debug)]
pub enum AnyBreakLog {
    /// One file per event under the data directory's `state/`.
    Local(LocalBreakLog),
    /// The DynamoDB BreakActions table.
    #[cfg(feature = "aws")]
    Dynamo(crate::aws::dynamo::DynamoBreakLog),
}

impl crate::ports::BreakLog for AnyBreakLog {
    async fn history(&self, break_id: &str, after: u64) -> Result<Vec<crate::breaks::BreakEvent>> {
        match self {
            Self::Local(t) => t.history(break_id, after).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.history(break_id, after).await,
        }
    }

    async fn append(&self, event: &crate::breaks::BreakEvent) -> Result<crate::ports::Appended> {
        match self {
            Self::Local(t) => t.append(event).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.append(event).await,
        }
    }

    async fn events(
        &self,
        bank: Option<&crate::ids::BankId>,
    ) -> Result<Vec<crate::breaks::BreakEvent>> {
        match self {
            Self::Local(t) => t.events(bank).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.events(bank).await,
        }
    }
}

/// Where a [`PiiKeySource`] reads the key.
enum KeyFetch {
    /// [`crate::pii::PII_KEY_ENV`]: local runs and tests; never changes.
    Fixed,
    /// The Secrets Manager secret of [`config::PII_SECRET_ENV`].
    #[cfg(feature = "aws")]
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret: String,
    },
}

impl KeyFetch {
    async fn read(&self, settings: &Settings) -> Result<(String, crate::pii::PiiKey)> {
        match self {
            Self::Fixed => Ok((String::new(), settings.pii_key()?)),
            #[cfg(feature = "aws")]
            Self::Secret { client, secret } => {
                crate::aws::secrets::pii_key_version(client, secret).await
            }
        }
    }
}

/// The PII key of a long-lived function (the stream indexer, a normalizer kept warm): read at
/// start, then again once older than its time-to-live, so a rotation of the secret reaches
/// every warm function within that time. A read that fails keeps the last key (and logs the
/// failure, never the key); the secret's version id says when it changed.
pub struct PiiKeySource {
    fetch: KeyFetch,
    settings: Settings,
    ttl_ms: i64,
    cached: std::sync::Mutex<(i64, String, crate::pii::PiiKey)>,
}

impl std::fmt::Debug for PiiKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiKeySource")
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

impl PiiKeySource {
    /// The key to use at `now_ms` (epoch milliseconds).
    pub async fn get(&self, now_ms: i64) -> Result<crate::pii::PiiKey> {
        let lock = || {
            self.cached
                .lock()
                .map_err(|_| Error::Invariant("PII key lock poisoned".into()))
        };
        let (loaded, version, key) = lock()?.clone();
        if now_ms - loaded < self.ttl_ms {
            return Ok(key);
        }
        let (version, key) = match self.fetch.read(&self.settings).await {
            Ok((v, k)) => {
                if v != version {
                    tracing::warn!(from = %version, to = %v, "PII key rotated: new user tokens from now on");
                }
                (v, k)
            }
            Err(e) => {
                tracing::error!(error = %e, "PII key read failed; the last key stays in use");
                (version, key)
            }
        };
        *lock()? = (now_ms, version, key.clone());
        Ok(key)
    }
}

/// The [`crate::ports::RulesTable`] of either backend.
#[derive(Debug)]
pub enum AnyRules {
    /// One file per version under the data directory's `state/`.
    Local(LocalRules),
    /// The DynamoDB Rules table.
    #[cfg(feature = "aws")]
    Dynamo(crate::aws::dynamo::DynamoRules),
}

impl crate::ports::RulesTable for AnyRules {
    async fn versions(&self) -> Result<Vec<crate::rules::table::RuleVersion>> {
        match self {
            Self::Local(t) => t.versions().await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.versions().await,
        }
    }

    async fn append(
        &self,
        version: &crate::rules::table::RuleVersion,
    ) -> Result<crate::ports::Appended> {
        match self {
            Self::Local(t) => t.append(version).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(t) => t.append(version).await,
        }
    }
}

/// The [`Catalog`] of either backend.
#[derive(Debug)]
pub enum AnyCatalog {
    /// JSON documents under the data directory's `state/`.
    Local(LocalCatalog),
    /// The Glue database.
    #[cfg(feature = "aws")]
    Glue(crate::aws::glue::GlueCatalog),
}

impl Catalog for AnyCatalog {
    async fn register_partition(&self, p: &Partition) -> Result<()> {
        match self {
            Self::Local(c) => c.register_partition(p).await,
            #[cfg(feature = "aws")]
            Self::Glue(c) => c.register_partition(p).await,
        }
    }

    async fn partitions(&self, database: &str, table: &str) -> Result<Vec<Partition>> {
        match self {
            Self::Local(c) => c.partitions(database, table).await,
            #[cfg(feature = "aws")]
            Self::Glue(c) => c.partitions(database, table).await,
        }
    }
}

/// The [`TransactionIndex`] of either backend.
#[derive(Debug)]
pub enum AnyIndex {
    /// The embedded store under the data directory.
    Local(LocalTransactionIndex),
    /// The DynamoDB TransactionIndex table.
    #[cfg(feature = "aws")]
    Dynamo(crate::aws::dynamo::DynamoTransactionIndex),
}

impl TransactionIndex for AnyIndex {
    async fn get_many(&self, ids: &[TransactionId]) -> Result<Vec<IndexItem>> {
        match self {
            Self::Local(i) => i.get_many(ids).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.get_many(ids).await,
        }
    }

    async fn map_many<T: Send>(
        &self,
        ids: &[TransactionId],
        f: impl Fn(&IndexItem) -> T + Send + Sync,
    ) -> Result<Vec<T>> {
        match self {
            Self::Local(i) => i.map_many(ids, f).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.map_many(ids, f).await,
        }
    }

    async fn put_many(&self, writes: Vec<ConditionalPut>) -> Result<Vec<PutOutcome>> {
        match self {
            Self::Local(i) => i.put_many(writes).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.put_many(writes).await,
        }
    }

    async fn query(&self, q: &IndexQuery) -> Result<IndexPage> {
        match self {
            Self::Local(i) => i.query(q).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.query(q).await,
        }
    }

    async fn write_settlements(&self, updates: &[SettlementUpdate]) -> Result<u64> {
        match self {
            Self::Local(i) => i.write_settlements(updates).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.write_settlements(updates).await,
        }
    }

    async fn merchant_day(
        &self,
        merchant: &MerchantId,
        day: BusinessDate,
    ) -> Result<Option<MerchantDayTotals>> {
        match self {
            Self::Local(i) => i.merchant_day(merchant, day).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.merchant_day(merchant, day).await,
        }
    }

    async fn user_hour_counts(&self, keys: &[(String, i64)]) -> Result<Vec<u64>> {
        match self {
            Self::Local(i) => i.user_hour_counts(keys).await,
            #[cfg(feature = "aws")]
            Self::Dynamo(i) => i.user_hour_counts(keys).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_backend_serves_the_ports_from_its_directory() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let b = Backend::Local(dir.path().to_path_buf());
        let store = b.store()?;
        store.put("a/b.txt", Bytes::from_static(b"x")).await?;
        assert_eq!(
            std::fs::read(dir.path().join("a/b.txt")).map_err(|e| Error::io("read", e))?,
            b"x"
        );
        assert_eq!(store.list("a/").await?.len(), 1);
        let index = b.index(IndexMode::Writer)?;
        assert!(index.get(&TransactionId::new("t_1")?).await?.is_none());
        assert!(
            b.runs()?
                .runs(BusinessDate::parse("2026-11-20")?)
                .await?
                .is_empty()
        );
        Ok(())
    }
}
