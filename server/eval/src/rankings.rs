//! The rankings file of `EVALUATION.md`: what an engine (or a baseline) answered, in one JSON
//! object. Every task is optional so that a partial file (say only `C` and `C_overall`) is valid;
//! a task that is absent is reported as absent, never as zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EvalError;

/// One answer per query, best first. Object keys are ids written as strings in JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rankings {
    /// Task A (and A'): test thread id → candidate user ids.
    #[serde(rename = "A", default, skip_serializing_if = "Option::is_none")]
    pub a: Option<BTreeMap<i64, Vec<i64>>>,
    /// Task B: candidate user id → test thread ids.
    #[serde(rename = "B", default, skip_serializing_if = "Option::is_none")]
    pub b: Option<BTreeMap<i64, Vec<i64>>>,
    /// Task C: facet id → test thread ids.
    #[serde(rename = "C", default, skip_serializing_if = "Option::is_none")]
    pub c: Option<BTreeMap<String, Vec<i64>>>,
    /// Task C AUC: test thread id → strategic-relevance score (higher is more relevant).
    #[serde(rename = "C_overall", default, skip_serializing_if = "Option::is_none")]
    pub c_overall: Option<BTreeMap<i64, f64>>,
    /// Task D: test thread id → asset (history thread) ids.
    #[serde(rename = "D", default, skip_serializing_if = "Option::is_none")]
    pub d: Option<BTreeMap<i64, Vec<i64>>>,
    /// Task E: candidate user ids.
    #[serde(rename = "E", default, skip_serializing_if = "Option::is_none")]
    pub e: Option<Vec<i64>>,
}

impl Rankings {
    /// Parses a rankings file.
    pub fn from_json(text: &str) -> Result<Rankings, EvalError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Writes the rankings file (compact JSON).
    pub fn to_json(&self) -> String {
        // Maps with integer or string keys and finite numbers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_format_and_partial_files() {
        let full = Rankings::from_json(
            r#"{"A": {"10": [3, 4]}, "B": {"3": [10]}, "C": {"f": [10, 11]},
                "C_overall": {"10": 0.5, "11": 1}, "D": {"10": [1]}, "E": [4, 3]}"#,
        )
        .unwrap();
        assert_eq!(full.a.as_ref().unwrap()[&10], vec![3, 4]);
        assert_eq!(full.c_overall.as_ref().unwrap()[&11], 1.0);
        assert_eq!(full.e, Some(vec![4, 3]));
        let round_trip = Rankings::from_json(&full.to_json()).unwrap();
        assert_eq!(round_trip, full);

        let partial = Rankings::from_json(r#"{"C": {"f": [1]}, "C_overall": {"1": 2.0}}"#).unwrap();
        assert!(partial.a.is_none() && partial.b.is_none() && partial.d.is_none());
        assert!(partial.e.is_none());
        assert!(partial.c.is_some());
    }
}
