//! The Rules table on DynamoDB (design.md §7, [`crate::rules::table`]): PK `rule_type`, SK
//! `rule_id` holding `{id}#{version:06}`, and the version as its JSON text (`version_json`).
//! A version is put only if its key is free (`attribute_not_exists(rule_id)`): two operators
//! writing the same next version get one success and one conflict.

use aws_sdk_dynamodb::Client;

use super::{Item, invalid, s};
use crate::aws::sdk_error;
use crate::error::Result;
use crate::ports::{Appended, RulesTable};
use crate::rules::table::{RuleKind, RuleVersion};

/// The Rules table.
#[derive(Debug, Clone)]
pub struct DynamoRules {
    client: Client,
    table: String,
}

impl DynamoRules {
    /// The Rules table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn version_of(item: &Item) -> Result<RuleVersion> {
        let text = item
            .get("version_json")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| invalid("Rules", "no `version_json` text"))?;
        Ok(serde_json::from_str(text)?)
    }
}

impl RulesTable for DynamoRules {
    async fn versions(&self) -> Result<Vec<RuleVersion>> {
        let mut out = Vec::new();
        // One partition per kind: a query each, page after page.
        for kind in RuleKind::ALL {
            let mut start: Option<Item> = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("rule_type = :k")
                    .expression_attribute_values(":k", s(kind.as_str()))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error("dynamodb", "Query", e))?;
                for i in page.items() {
                    out.push(Self::version_of(i)?);
                }
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    async fn append(&self, version: &RuleVersion) -> Result<Appended> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("rule_type", s(version.kind.as_str()))
            .item("rule_id", s(version.sort_key()))
            .item("changed_by", s(&version.changed_by))
            .item("changed_at", s(version.changed_at.to_rfc3339()))
            .item("version_json", s(serde_json::to_string(version)?))
            .condition_expression("attribute_not_exists(rule_id)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(Appended::Written),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Appended::Conflict)
            }
            Err(e) => Err(sdk_error("dynamodb", "PutItem", e)),
        }
    }
}
