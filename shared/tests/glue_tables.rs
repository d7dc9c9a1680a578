//! The Glue tables that `infra/glue-tables.yaml` deploys are the Parquet schemas the code
//! writes: this test renders the catalog from the `Columnar` schemas (column names, Hive types,
//! order, partition keys, locations) and compares it with the file, naming the first line that
//! differs. Athena reads a column by name and type, so a column added in code and not in the
//! catalog is invisible, and a type that differs fails the query.
//!
//! After an intended schema change, `RECON_BLESS=1` re-writes the file from the code.

use std::fmt::Write as _;

use arrow_schema::{DataType, Schema};
use recon_shared::close::{FinalRow, KpiRow};
use recon_shared::columnar::Columnar;
use recon_shared::reconcile::IndexRow;
use recon_shared::records::{StatementLine, Transaction};
use recon_shared::report::Flag;
use recon_shared::source::Reject;
use recon_shared::{Error, Result};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/glue-tables.yaml");

/// One catalog table: its resource name, Glue name, location under the bucket and partition
/// keys, with the schema of the rows it holds.
struct Table {
    resource: &'static str,
    name: &'static str,
    prefix: &'static str,
    partitions: &'static [&'static str],
    schema: arrow_schema::SchemaRef,
}

fn tables() -> Vec<Table> {
    let by_day_and_bank: &'static [&'static str] = &["business_date", "bank_id"];
    vec![
        Table {
            resource: "StatementsTable",
            name: "statements",
            prefix: "curated/statements/",
            partitions: by_day_and_bank,
            schema: StatementLine::schema(),
        },
        Table {
            resource: "TransactionsTable",
            name: "transactions",
            prefix: "curated/transactions/",
            partitions: &["business_date"],
            schema: Transaction::schema(),
        },
        Table {
            resource: "RejectsTable",
            name: "rejects",
            prefix: "curated/rejects/",
            partitions: &["business_date", "source_id"],
            schema: Reject::schema(),
        },
        Table {
            resource: "BatchIndexTable",
            name: "batch_index",
            prefix: "index/batch/",
            partitions: by_day_and_bank,
            schema: IndexRow::schema(),
        },
        Table {
            resource: "MismatchesTable",
            name: "mismatches",
            prefix: "index/mismatches/",
            partitions: by_day_and_bank,
            schema: IndexRow::schema(),
        },
        Table {
            resource: "FinalIndexTable",
            name: "final_index",
            prefix: "index/final/",
            partitions: &["business_date"],
            schema: FinalRow::schema(),
        },
        Table {
            resource: "MerchantKpisTable",
            name: "merchant_kpis",
            prefix: "index/kpis/",
            partitions: &["business_date"],
            schema: KpiRow::schema(),
        },
        Table {
            resource: "AnomaliesTable",
            name: "anomalies",
            prefix: "index/anomalies/",
            partitions: &["business_date"],
            schema: Flag::schema(),
        },
    ]
}

/// Column comments the catalog shows to analysts, by (table, column).
const COMMENTS: &[(&str, &str, &str)] = &[(
    "transactions",
    "user_id",
    "user token (utk_...), never the raw id",
)];

/// The Hive type Athena reads an Arrow column as.
fn hive(t: &DataType) -> Result<String> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Dictionary(_, v) => hive(v)?,
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::UInt8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Decimal128(p, s) => format!("\"decimal({p},{s})\""),
        other => {
            return Err(Error::Invariant(format!(
                "no Hive type for {other:?}: add one here and to the catalog"
            )));
        }
    })
}

fn table_yaml(out: &mut String, t: &Table, schema: &Schema) -> Result<()> {
    let w = |e: std::fmt::Error| Error::Invariant(e.to_string());
    writeln!(out, "  {}:", t.resource).map_err(w)?;
    out.push_str(
        "    Type: AWS::Glue::Table\n    Properties:\n      CatalogId: !Ref AWS::AccountId\n      DatabaseName: !Ref ReconDatabase\n      TableInput:\n",
    );
    writeln!(out, "        Name: {}", t.name).map_err(w)?;
    out.push_str(
        "        TableType: EXTERNAL_TABLE\n        Parameters:\n          classification: parquet\n          EXTERNAL: \"TRUE\"\n        PartitionKeys:\n",
    );
    for p in t.partitions {
        writeln!(out, "          - {{Name: {p}, Type: string}}").map_err(w)?;
    }
    out.push_str("        StorageDescriptor:\n");
    writeln!(
        out,
        "          Location: !Sub s3://${{DataBucket}}/{}",
        t.prefix
    )
    .map_err(w)?;
    out.push_str(
        "          InputFormat: org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat\n          OutputFormat: org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat\n          SerdeInfo:\n            SerializationLibrary: org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe\n          Columns:\n",
    );
    for f in schema.fields() {
        if t.partitions.contains(&f.name().as_str()) {
            continue; // a partition key is the key's, not a column of the files
        }
        let comment = COMMENTS
            .iter()
            .find(|(table, column, _)| *table == t.name && column == f.name())
            .map(|(_, _, c)| format!(", Comment: \"{c}\""))
            .unwrap_or_default();
        writeln!(
            out,
            "            - {{Name: {}, Type: {}{comment}}}",
            f.name(),
            hive(f.data_type())?
        )
        .map_err(w)?;
    }
    out.push('\n');
    Ok(())
}

fn render() -> Result<String> {
    let mut out = String::from(
        "# The Glue Data Catalog (Athena): the curated tables and the index, one table per Parquet
# layout of docs/design.md §2. A nested stack of template.yaml (GlueTables).
#
# Written from the code's Parquet schemas and checked against them by shared/tests/glue_tables.rs:
# do not edit by hand; after a schema change run
#   RECON_BLESS=1 cargo nextest run --workspace --all-features -E 'binary(glue_tables)'
AWSTemplateFormatVersion: \"2010-09-09\"
Description: Glue database and tables of the reconciliation index (curated inputs, batch and final index, KPIs).

Parameters:
  DataBucket:
    Type: String
    Description: Name of the data bucket the tables read.
  EnvironmentName:
    Type: String
    Description: Environment of the parent stack (dev, prod).

Resources:
  ReconDatabase:
    Type: AWS::Glue::Database
    Properties:
      CatalogId: !Ref AWS::AccountId
      DatabaseInput:
        Name: recon
        Description: !Sub Curated inputs and the reconciliation index of recon-${EnvironmentName}

",
    );
    for t in tables() {
        table_yaml(&mut out, &t, &t.schema)?;
    }
    out.push_str("Outputs:\n  DatabaseName:\n    Value: !Ref ReconDatabase\n");
    Ok(out)
}

#[test]
fn the_catalog_in_infra_is_the_parquet_schemas_of_the_code() -> Result<()> {
    let want = render()?;
    if std::env::var_os("RECON_BLESS").is_some() {
        std::fs::write(FILE, &want).map_err(|e| Error::io(FILE, e))?;
    }
    let got = std::fs::read_to_string(FILE).map_err(|e| Error::io(FILE, e))?;
    if let Some((n, (w, g))) = want
        .lines()
        .zip(got.lines())
        .enumerate()
        .find(|(_, (w, g))| w != g)
    {
        panic!(
            "infra/glue-tables.yaml line {} is `{g}`, the code's schemas say `{w}` (after an intended schema change: RECON_BLESS=1)",
            n + 1
        );
    }
    assert_eq!(
        want.lines().count(),
        got.lines().count(),
        "infra/glue-tables.yaml has a different number of lines than the code's schemas give"
    );
    Ok(())
}
