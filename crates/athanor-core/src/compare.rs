//! Side-by-side comparison of runs: configuration diff, aligned results, numeric series for charts.
//!
//! Pure functions over data the store already loaded (a handful of queries for any number of runs), so the same
//! code builds the compare page, its CSV/JSON export and the benchmark, and it is unit-tested without a database.

use crate::ids::{InstanceId, RunId};
use crate::model::{ResultRecord, Run};
use crate::status::RunStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// One compared run: a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunColumn {
    /// The run.
    pub id: RunId,
    /// Its instance.
    pub instance_id: InstanceId,
    /// Its instance's name, for the column header.
    pub instance_name: String,
    /// Its status.
    pub status: RunStatus,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (or to now while running).
    pub duration_seconds: Option<f64>,
    /// The highest `seq` among the results this comparison saw: a live view resumes after it.
    pub last_seq: i64,
}

/// One row of the configuration diff or the results table: a flattened key and its value in each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Row {
    /// Flattened key: `api.timeout`, `model_pairs[1].runs`, `metrics.f1`.
    pub key: String,
    /// One value per run column (`None` when that run has no such key).
    pub values: Vec<Option<Value>>,
    /// Whether the runs disagree (a missing value counts as different).
    pub differs: bool,
}

impl Row {
    /// Whether every present value is a number, and at least one is present.
    pub fn is_numeric(&self) -> bool {
        self.values.iter().any(Option::is_some) && self.values.iter().flatten().all(Value::is_number)
    }
}

/// A numeric series: one line per run in a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    /// Name shown above the chart (`loss`, `curve.accuracy`).
    pub name: String,
    /// Per run column, the `(x, y)` points in x order (empty when that run has none).
    pub lines: Vec<Vec<(f64, f64)>>,
}

/// Everything the compare view shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    /// Columns, in the order asked for.
    pub runs: Vec<RunColumn>,
    /// Every configuration key, flattened.
    pub config: Vec<Row>,
    /// Scalar results and the number/string/bool leaves of JSON results, flattened and aligned by key.
    pub results: Vec<Row>,
    /// Numeric series found in the results.
    pub series: Vec<Series>,
}

/// Whether a smaller number is better for a result key: losses, errors and times go down, the rest goes up.
/// The compare page starts from this guess and lets the reader flip it per row.
pub fn lower_is_better(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["loss", "error", "err", "time", "duration", "latency", "perplexity", "mse", "mae", "rmse", "regret"]
        .iter()
        .any(|word| key.split(|c: char| !c.is_ascii_alphanumeric()).any(|part| part == *word))
}

/// Flatten `value` into `(path, leaf)` pairs: objects by `.key`, arrays by `[i]`. An array of numbers is kept
/// whole (it is a series, not a hundred rows).
pub fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&path, child, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            out.push((prefix.to_owned(), value.clone()));
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{index}]"), child, out);
            }
        }
        leaf => out.push((prefix.to_owned(), leaf.clone())),
    }
}

/// `loss/12` → (`loss`, 12), `loss_12` → (`loss`, 12): keys that are one step of a series.
pub fn series_step(key: &str) -> Option<(&str, f64)> {
    let split = key.rfind(['/', '_'])?;
    let (name, step) = (&key[..split], &key[split + 1..]);
    if name.is_empty() || step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, step.parse::<f64>().ok()?))
}

fn rows_from(per_run: &[BTreeMap<String, Value>]) -> Vec<Row> {
    let mut keys: Vec<&String> = per_run.iter().flat_map(|map| map.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let values: Vec<Option<Value>> = per_run.iter().map(|map| map.get(key).cloned()).collect();
            let differs = values.windows(2).any(|pair| pair[0] != pair[1]);
            Row { key: key.clone(), values, differs }
        })
        .collect()
}

/// Build the comparison of `runs` (with their instance names) from their stored `results`.
///
/// When a run recorded a key more than once, its latest value counts.
pub fn compare(runs: &[(Run, String)], results: &[(RunId, ResultRecord)], now: DateTime<Utc>) -> Comparison {
    let column_of: HashMap<RunId, usize> = runs.iter().enumerate().map(|(i, (run, _))| (run.id, i)).collect();
    let mut last_seq = vec![0_i64; runs.len()];

    let config_maps: Vec<BTreeMap<String, Value>> = runs
        .iter()
        .map(|(run, _)| {
            let mut leaves = Vec::new();
            flatten("", &run.config, &mut leaves);
            leaves.into_iter().collect()
        })
        .collect();

    // Latest value per (run, key).
    let mut latest: Vec<BTreeMap<&str, (i64, &Value)>> = vec![BTreeMap::new(); runs.len()];
    for (run_id, record) in results {
        if let Some(&column) = column_of.get(run_id) {
            last_seq[column] = last_seq[column].max(record.seq);
            let slot = latest[column].entry(record.key.as_str()).or_insert((record.seq, &record.value));
            if record.seq >= slot.0 {
                *slot = (record.seq, &record.value);
            }
        }
    }

    let mut result_maps: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new(); runs.len()];
    let mut series: BTreeMap<String, Vec<Vec<(f64, f64)>>> = BTreeMap::new();
    for (column, keys) in latest.iter().enumerate() {
        for (key, (_, value)) in keys {
            if let (Some((name, step)), Some(y)) = (series_step(key), value.as_f64()) {
                series.entry(name.to_owned()).or_insert_with(|| vec![Vec::new(); runs.len()])[column].push((step, y));
                continue;
            }
            let mut leaves = Vec::new();
            flatten(key, value, &mut leaves);
            for (path, leaf) in leaves {
                match &leaf {
                    Value::Array(points) => {
                        let line: Vec<(f64, f64)> =
                            points.iter().enumerate().filter_map(|(i, v)| Some((i as f64, v.as_f64()?))).collect();
                        series.entry(path).or_insert_with(|| vec![Vec::new(); runs.len()])[column] = line;
                    }
                    _ => {
                        result_maps[column].insert(path, leaf);
                    }
                }
            }
        }
    }
    let series = series
        .into_iter()
        .map(|(name, mut lines)| {
            for line in &mut lines {
                line.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            Series { name, lines }
        })
        .collect();

    Comparison {
        runs: runs
            .iter()
            .zip(last_seq)
            .map(|((run, instance_name), last_seq)| RunColumn {
                id: run.id,
                instance_id: run.instance_id,
                instance_name: instance_name.clone(),
                status: run.status,
                started_at: run.started_at,
                duration_seconds: run.duration(now).map(|d| d.num_milliseconds() as f64 / 1000.0),
                last_seq,
            })
            .collect(),
        config: rows_from(&config_maps),
        results: rows_from(&result_maps),
        series,
    }
}

/// The best and worst column of a numeric row (`None` when fewer than two runs have a value, or all are equal).
pub fn best_and_worst(row: &Row, lower_better: bool) -> Option<(usize, usize)> {
    let numbers: Vec<(usize, f64)> =
        row.values.iter().enumerate().filter_map(|(i, v)| Some((i, v.as_ref()?.as_f64()?))).collect();
    if numbers.len() < 2 {
        return None;
    }
    let min = numbers.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let max = numbers.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))?;
    if min.1 == max.1 {
        return None;
    }
    Some(if lower_better { (min.0, max.0) } else { (max.0, min.0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(config: Value) -> Run {
        Run {
            id: RunId::from(uuid::Uuid::new_v4()),
            instance_id: InstanceId::from(uuid::Uuid::new_v4()),
            status: RunStatus::Completed,
            config,
            experiment_version: "1".into(),
            created_at: Utc::now(),
            started_at: None,
            completed_at: None,
            error: None,
        }
    }

    fn result(seq: i64, key: &str, value: Value) -> ResultRecord {
        ResultRecord { seq, ts: Utc::now(), key: key.into(), value }
    }

    #[test]
    fn config_diff_flattens_nested_keys_and_marks_differences() {
        let a = run(json!({"epochs": 10, "api": {"timeout": 30}, "pairs": [{"a": "x"}]}));
        let b = run(json!({"epochs": 20, "api": {"timeout": 30}, "pairs": [{"a": "x"}, {"a": "y"}]}));
        let comparison = compare(&[(a, "A".into()), (b, "B".into())], &[], Utc::now());
        let rows: Vec<(&str, bool)> = comparison.config.iter().map(|r| (r.key.as_str(), r.differs)).collect();
        assert_eq!(rows, vec![("api.timeout", false), ("epochs", true), ("pairs[0].a", false), ("pairs[1].a", true)]);
        assert_eq!(comparison.config[3].values, vec![None, Some(json!("y"))]);
    }

    #[test]
    fn results_align_by_key_with_latest_values_and_json_leaves() {
        let a = run(json!({}));
        let b = run(json!({}));
        let (ida, idb) = (a.id, b.id);
        let results = vec![
            (ida, result(1, "accuracy", json!(0.5))),
            (ida, result(5, "accuracy", json!(0.87))),
            (ida, result(2, "metrics", json!({"f1": 0.8, "label": "ok", "curve": [1, 2, 3]}))),
            (idb, result(1, "accuracy", json!(0.91))),
        ];
        let comparison = compare(&[(a, "A".into()), (b, "B".into())], &results, Utc::now());
        let keys: Vec<&str> = comparison.results.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["accuracy", "metrics.f1", "metrics.label"]);
        assert_eq!(comparison.results[0].values, vec![Some(json!(0.87)), Some(json!(0.91))]);
        assert!(comparison.results[0].is_numeric());
        assert!(!comparison.results[2].is_numeric());
        assert_eq!(comparison.series.len(), 1);
        assert_eq!(comparison.series[0].name, "metrics.curve");
        assert_eq!(comparison.series[0].lines[0], vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]);
        assert!(comparison.series[0].lines[1].is_empty());
    }

    #[test]
    fn stepped_keys_become_series_in_step_order() {
        let a = run(json!({}));
        let id = a.id;
        let results = vec![
            (id, result(1, "loss/10", json!(0.1))),
            (id, result(2, "loss/2", json!(0.5))),
            (id, result(3, "acc_1", json!(0.3))),
            (id, result(4, "model_2b", json!("not a step"))),
        ];
        let comparison = compare(&[(a, "A".into())], &results, Utc::now());
        let names: Vec<&str> = comparison.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["acc", "loss"]);
        assert_eq!(comparison.series[1].lines[0], vec![(2.0, 0.5), (10.0, 0.1)]);
        assert_eq!(comparison.results.len(), 1, "only model_2b stays a row");
    }

    #[test]
    fn best_and_worst_follow_the_direction() {
        let row = Row { key: "loss".into(), values: vec![Some(json!(0.3)), None, Some(json!(0.1))], differs: true };
        assert_eq!(best_and_worst(&row, true), Some((2, 0)));
        assert_eq!(best_and_worst(&row, false), Some((0, 2)));
        let flat = Row { key: "x".into(), values: vec![Some(json!(1)), Some(json!(1))], differs: false };
        assert_eq!(best_and_worst(&flat, false), None);
        assert!(lower_is_better("val_loss") && lower_is_better("loss/3") && !lower_is_better("accuracy"));
        assert!(!lower_is_better("glossary"), "whole words only");
    }
}
