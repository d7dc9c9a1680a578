//! CloudWatch embedded metric format (EMF): one JSON line on stdout that CloudWatch Logs turns
//! into metrics. Every function's metrics go through [`Emf`]: namespace [`NAMESPACE`],
//! dimensions `Environment` and `Function`, counts as whole numbers, ratios computed exactly
//! (decimal) and written as JSON numbers. Lines carry counts and ids of runs, never payloads
//! or user data.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};

/// Namespace of every metric of the product (the alarms of `template.yaml` watch it).
pub const NAMESPACE: &str = "Recon";

/// CloudWatch units the product uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A whole number of things (records, files, breaks).
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A ratio (0–1).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One EMF record: metrics with their dimensions, plus properties (searchable, not metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, Value)>,
    properties: Map<String, Value>,
}

impl Emf {
    /// A record of `function` in `environment` (the two dimensions of every metric).
    pub fn new(environment: &str, function: &str) -> Self {
        Self {
            dimensions: vec![
                ("Environment".into(), environment.into()),
                ("Function".into(), function.into()),
            ],
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Only the `Environment` dimension (product-wide metrics such as `MismatchRate`).
    pub fn environment_only(mut self) -> Self {
        self.dimensions.retain(|(k, _)| k == "Environment");
        self
    }

    /// Adds metric `name` as a `Count` (records, files, breaks …).
    pub fn count(mut self, name: &str, value: u64) -> Self {
        self.metrics
            .push((name.into(), Unit::Count, Value::from(value)));
        self
    }

    /// Adds metric `name` as a duration in `Milliseconds`.
    pub fn millis(mut self, name: &str, value: u64) -> Self {
        self.metrics
            .push((name.into(), Unit::Milliseconds, Value::from(value)));
        self
    }

    /// `part / whole` rounded to 6 decimals (0 when `whole` is 0).
    pub fn ratio(mut self, name: &str, part: u64, whole: u64) -> Self {
        let r = if whole == 0 {
            Decimal::ZERO
        } else {
            (Decimal::from(part) / Decimal::from(whole)).round_dp(6)
        };
        // A CloudWatch metric value (a ratio, stored as a double by CloudWatch), not money.
        #[allow(clippy::disallowed_methods)]
        let v = r
            .to_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::from(0), Value::Number);
        self.metrics.push((name.into(), Unit::None, v));
        self
    }

    /// Adds a property: logged in the line and searchable in Logs Insights, but not a metric
    /// or a dimension (e.g. the business date or the run id).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The JSON line, stamped `timestamp_ms`.
    pub fn line(&self, timestamp_ms: i64) -> String {
        let mut o = self.properties.clone();
        for (k, v) in &self.dimensions {
            o.insert(k.clone(), Value::String(v.clone()));
        }
        for (k, _, v) in &self.metrics {
            o.insert(k.clone(), v.clone());
        }
        let dims: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(k, u, _)| json!({"Name": k, "Unit": u.as_str()}))
            .collect();
        o.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dims],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(o).to_string()
    }
}

/// `PARTIAL_MATCH` → `PartialMatch` (metric names).
pub fn pascal(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()
            })
        })
        .collect()
}

/// Milliseconds since the epoch (EMF `Timestamp`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Checks that `line` is a well-formed EMF record and answers its metric values by name
/// (tests of every function use it).
pub fn parse_line(line: &str) -> crate::Result<Map<String, Value>> {
    let v: Value = serde_json::from_str(line)?;
    let bad = |why: &str| crate::Error::Invariant(format!("not an EMF line: {why}"));
    let o = v.as_object().ok_or_else(|| bad("not an object"))?;
    let directive = &o
        .get("_aws")
        .and_then(|a| a.get("CloudWatchMetrics"))
        .and_then(|c| c.get(0))
        .ok_or_else(|| bad("no _aws.CloudWatchMetrics[0]"))?;
    if !o
        .get("_aws")
        .and_then(|a| a.get("Timestamp"))
        .is_some_and(Value::is_i64)
    {
        return Err(bad("no integer _aws.Timestamp"));
    }
    if directive["Namespace"] != NAMESPACE {
        return Err(bad("wrong namespace"));
    }
    for set in directive["Dimensions"]
        .as_array()
        .ok_or_else(|| bad("no dimension sets"))?
    {
        for d in set
            .as_array()
            .ok_or_else(|| bad("a dimension set is not a list"))?
        {
            let name = d.as_str().ok_or_else(|| bad("a dimension is not a name"))?;
            if !o.get(name).is_some_and(Value::is_string) {
                return Err(bad("a dimension has no string value"));
            }
        }
    }
    let mut out = Map::new();
    for m in directive["Metrics"]
        .as_array()
        .ok_or_else(|| bad("no metrics"))?
    {
        let name = m["Name"]
            .as_str()
            .ok_or_else(|| bad("a metric has no name"))?;
        if !m["Unit"].is_string() {
            return Err(bad("a metric has no unit"));
        }
        let value = o
            .get(name)
            .filter(|v| v.is_number())
            .ok_or_else(|| bad("a metric has no numeric value"))?;
        out.insert(name.into(), value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_has_the_emf_structure_and_exact_ratios() -> crate::Result<()> {
        let line = Emf::new("prod", "normalizer")
            .count("RecordsIn", 1000)
            .count("RecordsRejected", 3)
            .ratio("RejectRate", 3, 1000)
            .millis("Duration", 42)
            .property("BusinessDate", "2026-11-20")
            .line(1_795_226_400_000);
        let v: Value = serde_json::from_str(&line)?;
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Recon");
        assert_eq!(d["Dimensions"], json!([["Environment", "Function"]]));
        assert_eq!(
            d["Metrics"],
            json!([{"Name": "RecordsIn", "Unit": "Count"},
                   {"Name": "RecordsRejected", "Unit": "Count"},
                   {"Name": "RejectRate", "Unit": "None"},
                   {"Name": "Duration", "Unit": "Milliseconds"}])
        );
        assert_eq!(v["_aws"]["Timestamp"], 1_795_226_400_000i64);
        assert_eq!(v["Environment"], "prod");
        assert_eq!(v["Function"], "normalizer");
        assert_eq!(v["BusinessDate"], "2026-11-20");
        let m = parse_line(&line)?;
        assert_eq!(m["RecordsIn"], 1000);
        assert_eq!(m["RejectRate"], json!(0.003));
        assert_eq!(m["Duration"], 42);
        Ok(())
    }

    #[test]
    fn environment_only_drops_the_function_dimension() -> crate::Result<()> {
        let line = Emf::new("dev", "final-aggregate")
            .environment_only()
            .ratio("MismatchRate", 0, 0)
            .line(0);
        let v: Value = serde_json::from_str(&line)?;
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Environment"]])
        );
        assert!(v.get("Function").is_none());
        assert_eq!(parse_line(&line)?["MismatchRate"], json!(0.0));
        assert!(parse_line("{\"a\": 1}").is_err());
        Ok(())
    }
}
