//! What the result tools answer: a summary by key (`list_results`) and every value of one key
//! (`get_result_details`).
//!
//! A run's results can be long: a curve recorded with `ctx.series("loss", epoch, value)` is one record per step,
//! stored under the keys `loss/1`, `loss/2`, … (the convention of [`athanor_core::compare::series_step`], which
//! the compare page and the charts read too). An agent deciding what to look at needs one line per thing the run
//! measured, not every point, so the summary folds a series into one entry with its point count and its value at
//! the last step, and keeps plain keys with their latest value and how many values they have.
//!
//! Both fold the records page by page, so memory grows with the number of distinct keys (or with the values kept
//! for one key, capped at [`MAX_DETAIL_VALUES`]), never with the length of the run.

use athanor_core::compare::series_step;
use athanor_core::{ResultRecord, RunId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// The most values `get_result_details` returns for one key (values and series points together).
pub const MAX_DETAIL_VALUES: usize = 10_000;

/// `list_results`' answer.
#[derive(Debug, Serialize)]
pub struct ResultSummary {
    /// The run.
    pub run_id: RunId,
    /// Result values recorded in all (every key, every step).
    pub total_values: u64,
    /// Plain keys, in the order they were first recorded.
    pub keys: Vec<KeySummary>,
    /// Series (`name/step` keys folded by name), in the order they were first recorded.
    pub series: Vec<SeriesSummary>,
    #[serde(skip)]
    key_index: HashMap<String, usize>,
    #[serde(skip)]
    series_index: HashMap<String, usize>,
}

/// One plain result key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySummary {
    /// The key, e.g. `accuracy`.
    pub key: String,
    /// How many values were recorded under it.
    pub count: u64,
    /// The value recorded last.
    pub latest: Value,
}

/// One series: the keys `name/1`, `name/2`, … folded together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSummary {
    /// The series' name, e.g. `loss`.
    pub name: String,
    /// How many points were recorded.
    pub points: u64,
    /// The smallest step recorded.
    pub first_step: u64,
    /// The largest step recorded.
    pub last_step: u64,
    /// The value at `last_step` (the last one recorded for that step).
    pub latest: Value,
}

impl ResultSummary {
    /// An empty summary of `run_id`'s results.
    pub fn new(run_id: RunId) -> ResultSummary {
        ResultSummary {
            run_id,
            total_values: 0,
            keys: Vec::new(),
            series: Vec::new(),
            key_index: HashMap::new(),
            series_index: HashMap::new(),
        }
    }

    /// Fold in one record; records must come in `seq` order, so "latest" is the one added last.
    pub fn add(&mut self, record: &ResultRecord) {
        self.total_values += 1;
        if let Some((name, step)) = step_of(&record.key) {
            match self.series_index.get(name) {
                Some(&index) => {
                    let series = &mut self.series[index];
                    series.points += 1;
                    series.first_step = series.first_step.min(step);
                    if step >= series.last_step {
                        series.last_step = step;
                        series.latest = record.value.clone();
                    }
                }
                None => {
                    self.series_index.insert(name.to_owned(), self.series.len());
                    self.series.push(SeriesSummary {
                        name: name.to_owned(),
                        points: 1,
                        first_step: step,
                        last_step: step,
                        latest: record.value.clone(),
                    });
                }
            }
            return;
        }
        match self.key_index.get(&record.key) {
            Some(&index) => {
                let key = &mut self.keys[index];
                key.count += 1;
                key.latest = record.value.clone();
            }
            None => {
                self.key_index.insert(record.key.clone(), self.keys.len());
                self.keys.push(KeySummary { key: record.key.clone(), count: 1, latest: record.value.clone() });
            }
        }
    }
}

/// `get_result_details`' answer.
#[derive(Debug, Serialize)]
pub struct ResultDetails {
    /// The run.
    pub run_id: RunId,
    /// The key asked for.
    pub key: String,
    /// Every value recorded under exactly `key`, in the order recorded.
    pub values: Vec<KeyValue>,
    /// When `key` names a series: its points (`key/1`, `key/2`, …) in the order recorded.
    pub series: Vec<SeriesPoint>,
    /// Whether values were left out because there were more than 10,000.
    pub truncated: bool,
}

/// One value of a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    /// Its position among all the run's records (logs and results share one sequence).
    pub seq: i64,
    /// When it was recorded.
    pub ts: DateTime<Utc>,
    /// The value.
    pub value: Value,
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// The step (the number after the `/`).
    pub step: u64,
    /// The value at that step.
    pub value: Value,
}

impl ResultDetails {
    /// No values yet of `key` in `run_id`.
    pub fn new(run_id: RunId, key: String) -> ResultDetails {
        ResultDetails { run_id, key, values: Vec::new(), series: Vec::new(), truncated: false }
    }

    /// Keep `record` if it belongs to the key; records must come in `seq` order.
    pub fn add(&mut self, record: &ResultRecord) {
        let point = step_of(&record.key).filter(|(name, _)| *name == self.key);
        if record.key != self.key && point.is_none() {
            return;
        }
        if self.values.len() + self.series.len() >= MAX_DETAIL_VALUES {
            self.truncated = true;
            return;
        }
        match point {
            Some((_, step)) => self.series.push(SeriesPoint { step, value: record.value.clone() }),
            None => self.values.push(KeyValue { seq: record.seq, ts: record.ts, value: record.value.clone() }),
        }
    }

    /// Whether nothing at all was recorded under the key.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.series.is_empty() && !self.truncated
    }
}

/// `loss/12` → (`loss`, 12): the series convention of the rest of Athanor, with the step as a whole number (a step
/// too large for `u64` leaves the key a plain key).
fn step_of(key: &str) -> Option<(&str, u64)> {
    let (name, _) = series_step(key)?;
    let step = key[name.len() + 1..].parse().ok()?;
    Some((name, step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(seq: i64, key: &str, value: Value) -> ResultRecord {
        ResultRecord { seq, ts: Utc::now(), key: key.to_owned(), value }
    }

    fn run() -> RunId {
        RunId::parse("0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11").unwrap()
    }

    /// What `training_curve` records: a loss and accuracy point per epoch, then final scalars under the series'
    /// own names, then a key recorded twice.
    fn training() -> Vec<ResultRecord> {
        vec![
            record(1, "loss/1", json!(0.9)),
            record(2, "accuracy/1", json!(0.5)),
            record(3, "loss/2", json!(0.5)),
            record(4, "accuracy/2", json!(0.7)),
            record(5, "loss/3", json!(0.2)),
            record(6, "loss", json!(0.2)),
            record(7, "best", json!({"epoch": 1})),
            record(8, "best", json!({"epoch": 3})),
        ]
    }

    #[test]
    fn a_summary_folds_series_and_keeps_the_latest_value_of_each_key() {
        let mut summary = ResultSummary::new(run());
        training().iter().for_each(|r| summary.add(r));
        assert_eq!(summary.total_values, 8);
        assert_eq!(
            summary.keys,
            [
                KeySummary { key: "loss".into(), count: 1, latest: json!(0.2) },
                KeySummary { key: "best".into(), count: 2, latest: json!({"epoch": 3}) },
            ]
        );
        assert_eq!(
            summary.series,
            [
                SeriesSummary { name: "loss".into(), points: 3, first_step: 1, last_step: 3, latest: json!(0.2) },
                SeriesSummary { name: "accuracy".into(), points: 2, first_step: 1, last_step: 2, latest: json!(0.7) },
            ]
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["keys"][1]["count"], json!(2));
        assert!(json.get("key_index").is_none(), "{json}");
    }

    #[test]
    fn a_series_recorded_out_of_order_reports_the_value_at_its_last_step() {
        let mut summary = ResultSummary::new(run());
        for r in [record(1, "loss/5", json!(5)), record(2, "loss/2", json!(2)), record(3, "loss/9", json!(9))] {
            summary.add(&r);
        }
        assert_eq!(
            summary.series,
            [SeriesSummary { name: "loss".into(), points: 3, first_step: 2, last_step: 9, latest: json!(9) }]
        );
    }

    #[test]
    fn details_of_a_name_give_its_values_and_its_series_points() {
        let mut details = ResultDetails::new(run(), "loss".into());
        training().iter().for_each(|r| details.add(r));
        assert_eq!(details.values.iter().map(|v| (v.seq, v.value.clone())).collect::<Vec<_>>(), [(6, json!(0.2))]);
        assert_eq!(
            details.series.iter().map(|p| (p.step, p.value.clone())).collect::<Vec<_>>(),
            [(1, json!(0.9)), (2, json!(0.5)), (3, json!(0.2))]
        );
        assert!(!details.truncated);

        let mut best = ResultDetails::new(run(), "best".into());
        training().iter().for_each(|r| best.add(r));
        assert_eq!(best.values.len(), 2);
        assert!(best.series.is_empty());

        let mut missing = ResultDetails::new(run(), "los".into());
        training().iter().for_each(|r| missing.add(r));
        assert!(missing.is_empty());
    }

    #[test]
    fn details_stop_at_the_cap_and_say_so() {
        let mut details = ResultDetails::new(run(), "x".into());
        for seq in 0..=MAX_DETAIL_VALUES as i64 {
            details.add(&record(seq, "x", json!(seq)));
        }
        assert_eq!(details.values.len(), MAX_DETAIL_VALUES);
        assert!(details.truncated);
        assert!(!details.is_empty());
    }

    #[test]
    fn only_digits_after_the_separator_make_a_step() {
        assert_eq!(step_of("loss/12"), Some(("loss", 12)));
        assert_eq!(step_of("top_5"), Some(("top", 5)));
        assert_eq!(step_of("loss/final"), None);
        assert_eq!(step_of("loss/99999999999999999999999"), None);
        assert_eq!(step_of("accuracy"), None);
    }
}
