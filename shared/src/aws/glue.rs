//! The Glue Data Catalog as the [`Catalog`] port.
//!
//! Databases and tables belong to `template.yaml`; the adapter registers partitions (their
//! storage descriptor is the table's, with the partition's location) and lists them.
//! Locations are `s3://{bucket}/{prefix}` in Glue and the key prefix at the port, as locally.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_glue::Client;
use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, TableInput,
};

use super::sdk_error;
use crate::error::{Error, Result};
use crate::ports::{Catalog, Partition};

/// A table's partition key names and storage descriptor.
type TableInfo = (Vec<String>, StorageDescriptor);

/// The [`Catalog`] on the Glue Data Catalog: partitions of the tables of the bucket.
#[derive(Debug)]
pub struct GlueCatalog {
    client: Client,
    bucket: String,
    /// (database, table) → partition key names and storage descriptor, read once.
    tables: Mutex<HashMap<(String, String), TableInfo>>,
    /// Partitions per `GetPartitions` page (`None`: the service's default).
    pub page_size: Option<i32>,
}

impl GlueCatalog {
    /// The catalog of the tables stored in `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            tables: Mutex::new(HashMap::new()),
            page_size: None,
        }
    }

    fn uri(&self, location: &str) -> String {
        if location.starts_with("s3://") {
            location.to_string()
        } else {
            format!("s3://{}/{location}", self.bucket)
        }
    }

    fn prefix<'a>(&self, uri: &'a str) -> &'a str {
        uri.strip_prefix("s3://")
            .and_then(|r| r.strip_prefix(self.bucket.as_str()))
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(uri)
    }

    /// Creates a database and a Parquet table partitioned by `partition_keys` (all strings),
    /// when missing (tests and local servers; on AWS the template creates them).
    pub async fn ensure_table(
        &self,
        database: &str,
        table: &str,
        partition_keys: &[&str],
    ) -> Result<()> {
        let input = DatabaseInput::builder()
            .name(database)
            .build()
            .map_err(|e| Error::Invariant(format!("glue request: {e}")))?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) => {}
            Err(e) => return Err(sdk_error("glue", "CreateDatabase", e)),
        }
        let mut t = TableInput::builder()
            .name(table)
            .table_type("EXTERNAL_TABLE")
            .parameters("classification", "parquet")
            .storage_descriptor(
                StorageDescriptor::builder()
                    .location(self.uri(&crate::keys::curated_table_prefix(table)))
                    .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                    .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                    .serde_info(
                        SerDeInfo::builder()
                            .serialization_library(
                                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                            )
                            .build(),
                    )
                    .build(),
            );
        for k in partition_keys {
            t = t.partition_keys(
                Column::builder()
                    .name(*k)
                    .r#type("string")
                    .build()
                    .map_err(|e| Error::Invariant(format!("glue request: {e}")))?,
            );
        }
        let t = t
            .build()
            .map_err(|e| Error::Invariant(format!("glue request: {e}")))?;
        match self
            .client
            .create_table()
            .database_name(database)
            .table_input(t)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("glue", "CreateTable", e)),
        }
    }

    /// The table's partition key names and storage descriptor (read once per process).
    async fn table(&self, database: &str, table: &str) -> Result<TableInfo> {
        let k = (database.to_string(), table.to_string());
        if let Some(t) = self.tables.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return Ok(t);
        }
        let out = match self
            .client
            .get_table()
            .database_name(database)
            .name(table)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                return Err(Error::NotFound {
                    key: format!("glue table {database}.{table}"),
                });
            }
            Err(e) => return Err(sdk_error("glue", "GetTable", e)),
        };
        let t = out
            .table()
            .ok_or_else(|| Error::Invariant(format!("glue table {database}.{table} not found")))?;
        let keys: Vec<String> = t
            .partition_keys()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let sd = t
            .storage_descriptor()
            .cloned()
            .unwrap_or_else(|| StorageDescriptor::builder().build());
        if let Ok(mut m) = self.tables.lock() {
            m.insert(k, (keys.clone(), sd.clone()));
        }
        Ok((keys, sd))
    }

    fn input(&self, p: &Partition, sd: &StorageDescriptor) -> PartitionInput {
        let mut sd = sd.clone();
        sd.location = Some(self.uri(&p.location));
        PartitionInput::builder()
            .set_values(Some(p.values.iter().map(|(_, v)| v.clone()).collect()))
            .storage_descriptor(sd)
            .build()
    }
}

impl Catalog for GlueCatalog {
    async fn register_partition(&self, p: &Partition) -> Result<()> {
        let (keys, sd) = self.table(&p.database, &p.table).await?;
        let names: Vec<&str> = p.values.iter().map(|(k, _)| k.as_str()).collect();
        if names != keys.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(Error::InvalidConfig {
                name: format!("{}.{}", p.database, p.table),
                reason: format!("partition columns {names:?} are not the table's {keys:?}"),
            });
        }
        let input = self.input(p, &sd);
        let created = self
            .client
            .create_partition()
            .database_name(&p.database)
            .table_name(&p.table)
            .partition_input(input.clone())
            .send()
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) => {}
            Err(e) => return Err(sdk_error("glue", "CreatePartition", e)),
        }
        // It exists: update it only when its location changed (idempotent otherwise).
        let values: Vec<String> = p.values.iter().map(|(_, v)| v.clone()).collect();
        let existing = self
            .client
            .get_partition()
            .database_name(&p.database)
            .table_name(&p.table)
            .set_partition_values(Some(values.clone()))
            .send()
            .await
            .map_err(|e| sdk_error("glue", "GetPartition", e))?;
        let location = existing
            .partition()
            .and_then(|x| x.storage_descriptor())
            .and_then(|s| s.location());
        if location == Some(self.uri(&p.location).as_str()) {
            return Ok(());
        }
        self.client
            .update_partition()
            .database_name(&p.database)
            .table_name(&p.table)
            .set_partition_value_list(Some(values))
            .partition_input(input)
            .send()
            .await
            .map_err(|e| sdk_error("glue", "UpdatePartition", e))?;
        Ok(())
    }

    async fn partitions(&self, database: &str, table: &str) -> Result<Vec<Partition>> {
        // A table that does not exist has no partitions (as locally); other errors are errors.
        let (keys, _) = match self.table(database, table).await {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_partitions()
                .database_name(database)
                .table_name(table)
                .set_max_results(self.page_size)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("glue", "GetPartitions", e))?;
            for part in page.partitions() {
                let location = part
                    .storage_descriptor()
                    .and_then(|s| s.location())
                    .unwrap_or_default();
                out.push(Partition {
                    database: database.to_string(),
                    table: table.to_string(),
                    values: keys
                        .iter()
                        .cloned()
                        .zip(part.values().iter().cloned())
                        .collect(),
                    location: self.prefix(location).to_string(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }
}
