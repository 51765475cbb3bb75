//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per record, which
//! CloudWatch Logs turns into metrics without an API call (so emitting costs no latency and no
//! IAM permission). Dimensions are low-cardinality only (function, outcome), never a tenant id.

use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of every metric the service emits; the template's alarms use it.
pub const NAMESPACE: &str = "AuditLog";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Builds the EMF record for `metrics` with `dimensions`.
pub fn record(metrics: &[(&str, f64, Unit)], dimensions: &[(&str, &str)]) -> Value {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({ "Name": name, "Unit": unit.as_str() })).collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::String((*v).into()));
    }
    for (name, value, _) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root)
}

/// Writes the record as one line on stdout, where the Lambda log agent picks it up. Outside
/// Lambda (the local run, tests) nothing is written: no agent reads it there.
pub fn emit(metrics: &[(&str, f64, Unit)], dimensions: &[(&str, &str)]) {
    static IN_LAMBDA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *IN_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()) {
        println!("{}", record(metrics, dimensions));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_declares_each_metric_and_carries_its_value() {
        let r = record(&[("EventsAppended", 3.0, Unit::Count)], &[("Function", "ingest")]);
        assert_eq!(r["_aws"]["CloudWatchMetrics"][0]["Namespace"], "AuditLog");
        assert_eq!(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
        assert_eq!(
            r["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{ "Name": "EventsAppended", "Unit": "Count" }])
        );
        assert_eq!(r["EventsAppended"], 3.0);
        assert_eq!(r["Function"], "ingest");
        assert!(r["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
}
