//! The BreakActions table on DynamoDB (design.md §12): PK `break_id`, SK `seq` (a number),
//! `bank_id` for the GSI `by_bank`, and the event as its JSON text (`event`), the bytes its
//! hash was computed over read back unchanged. An event is put only if its key is free
//! (`attribute_not_exists(seq)`): two writers of one `seq` get one success and one conflict.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, s};
use crate::aws::sdk_error;
use crate::breaks::BreakEvent;
use crate::error::{Error, Result};
use crate::ids::BankId;
use crate::ports::{Appended, BreakLog};

/// The GSI of BreakActions keyed by `bank_id` (and `seq`): the events of a bank's breaks.
pub const BY_BANK: &str = "by_bank";

/// The BreakActions table.
#[derive(Debug, Clone)]
pub struct DynamoBreakLog {
    client: Client,
    table: String,
}

impl DynamoBreakLog {
    /// The BreakActions table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn event_of(item: &Item) -> Result<BreakEvent> {
        let text = item
            .get("event")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| Error::InvalidFile {
                file: "dynamodb item (BreakActions)".into(),
                reason: "no `event` text".into(),
            })?;
        Ok(serde_json::from_str(text)?)
    }

    /// Every item of a query or scan, page after page.
    async fn collect(&self, bank: Option<&BankId>) -> Result<Vec<BreakEvent>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = match bank {
                Some(b) => {
                    let page = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .index_name(BY_BANK)
                        .key_condition_expression("bank_id = :b")
                        .expression_attribute_values(":b", s(b.as_str()))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| sdk_error("dynamodb", "Query", e))?;
                    (page.items.unwrap_or_default(), page.last_evaluated_key)
                }
                None => {
                    let page = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| sdk_error("dynamodb", "Scan", e))?;
                    (page.items.unwrap_or_default(), page.last_evaluated_key)
                }
            };
            for i in &items {
                out.push(Self::event_of(i)?);
            }
            match next {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

impl BreakLog for DynamoBreakLog {
    async fn history(&self, break_id: &str, after: u64) -> Result<Vec<BreakEvent>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("break_id = :b AND seq > :after")
                .expression_attribute_values(":b", s(break_id))
                .expression_attribute_values(":after", AttributeValue::N(after.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", "Query", e))?;
            for i in page.items() {
                out.push(Self::event_of(i)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    async fn append(&self, event: &BreakEvent) -> Result<Appended> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("break_id", s(&event.break_id))
            .item("seq", AttributeValue::N(event.seq.to_string()))
            .item("bank_id", s(event.bank_id.as_str()))
            .item("event", s(&serde_json::to_string(event)?))
            .condition_expression("attribute_not_exists(seq)")
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

    async fn events(&self, bank: Option<&BankId>) -> Result<Vec<BreakEvent>> {
        self.collect(bank).await
    }
}
