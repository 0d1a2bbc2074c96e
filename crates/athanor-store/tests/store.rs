//! The store's behaviour, checked identically on SQLite and PostgreSQL.

mod support;

use athanor_core::{InstanceId, RunId};
use athanor_core::{LevelCounts, LogFilter, LogLevel, LogRecord, ResultRecord, RunStatus};
use athanor_store::{Backend, LogQuery, RunTally, Store, StoreError, PAGE_BYTES};
use chrono::Utc;
use serde_json::json;
use support::draft;
use uuid::Uuid;

on_both_backends!(
    instances_round_trip_and_edit,
    deleting_an_instance_removes_its_runs_logs_and_results,
    runs_keep_their_own_config_snapshot,
    runs_list_newest_first_and_by_status_oldest_first,
    status_changes_follow_the_machine,
    logs_and_results_append_and_page_by_seq,
    a_batch_with_a_bad_record_writes_nothing,
    dashboard_summary_counts_runs_and_shows_the_latest,
    missing_things_are_reported_not_invented,
    an_error_message_with_nul_is_stored_with_the_replacement_character,
    runs_page_by_keyset_newest_first_without_gaps_or_repeats,
    a_retried_append_whose_first_attempt_landed_succeeds_without_duplicates,
    a_retry_whose_stored_rows_come_late_in_the_batch_or_only_in_results_skips_them,
    refused_records_are_permanent_errors_and_a_lost_connection_is_transient,
    large_records_are_stored_in_statements_capped_in_bytes,
    searching_logs_by_text_and_level_covers_the_whole_run,
    pages_of_huge_records_stop_at_their_byte_bound_and_paging_reads_them_all,
);

fn log(seq: i64, level: LogLevel, message: &str) -> LogRecord {
    LogRecord { seq, ts: Utc::now(), level, message: message.to_owned(), metadata: Some(json!({"i": seq})) }
}

fn result(seq: i64, key: &str, value: serde_json::Value) -> ResultRecord {
    ResultRecord { seq, ts: Utc::now(), key: key.to_owned(), value }
}

async fn instances_round_trip_and_edit(store: Store) {
    let created = store.create_instance(&draft("Baseline")).await.unwrap();
    assert_eq!(store.get_instance(created.id).await.unwrap(), Some(created.clone()));

    let mut edit = draft("Baseline v2");
    edit.config = json!({"epochs": 99});
    let updated = store.update_instance(created.id, &edit).await.unwrap();
    assert_eq!(updated.name.as_str(), "Baseline v2");
    assert_eq!(updated.config, json!({"epochs": 99}));
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(store.get_instance(created.id).await.unwrap(), Some(updated));
    assert_eq!(store.count_instances().await.unwrap(), 1);
}

async fn deleting_an_instance_removes_its_runs_logs_and_results(store: Store) {
    let keep = store.create_instance(&draft("Keep")).await.unwrap();
    let doomed = store.create_instance(&draft("Doomed")).await.unwrap();
    let kept_run = store.create_run(keep.id, &keep.config, "1").await.unwrap();
    let run = store.create_run(doomed.id, &doomed.config, "1").await.unwrap();
    for r in [&kept_run, &run] {
        store.append_records(r.id, &[log(1, LogLevel::Info, "hi")], &[result(2, "acc", json!(0.9))]).await.unwrap();
    }

    assert!(store.delete_instance(doomed.id).await.unwrap());
    assert!(!store.delete_instance(doomed.id).await.unwrap(), "a second delete finds nothing");
    assert_eq!(store.get_run(run.id).await.unwrap(), None);
    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 0);
    assert_eq!(store.count_results(run.id).await.unwrap(), 0);
    // The other instance is untouched.
    assert!(store.get_run(kept_run.id).await.unwrap().is_some());
    assert_eq!(store.count_logs(kept_run.id, &[]).await.unwrap(), 1);
    assert_eq!(store.count_results(kept_run.id).await.unwrap(), 1);
}

async fn runs_keep_their_own_config_snapshot(store: Store) {
    let instance = store.create_instance(&draft("Snapshot")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "0.3.1").await.unwrap();
    assert_eq!(run.status, RunStatus::Pending);

    let mut edit = draft("Snapshot");
    edit.config = json!({"epochs": 1});
    store.update_instance(instance.id, &edit).await.unwrap();

    let stored = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(stored.config, instance.config, "editing the instance must not rewrite the run");
    assert_eq!(stored.experiment_version, "0.3.1");
    assert_eq!(stored, run);
}

async fn runs_list_newest_first_and_by_status_oldest_first(store: Store) {
    let instance = store.create_instance(&draft("Many")).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(store.create_run(instance.id, &instance.config, "1").await.unwrap().id);
    }
    let listed: Vec<RunId> = store.list_runs(instance.id).await.unwrap().into_iter().map(|r| r.id).collect();
    let newest_first: Vec<RunId> = ids.iter().rev().copied().collect();
    assert_eq!(listed, newest_first);

    store.transition_run(ids[2], RunStatus::Running, None).await.unwrap();
    let pending: Vec<RunId> =
        store.runs_with_status(RunStatus::Pending).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(pending, vec![ids[0], ids[1], ids[3], ids[4]]);
}

async fn status_changes_follow_the_machine(store: Store) {
    let instance = store.create_instance(&draft("Machine")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();

    let running = store.transition_run(run.id, RunStatus::Running, None).await.unwrap();
    assert_eq!(running.status, RunStatus::Running);
    assert!(running.started_at.is_some() && running.completed_at.is_none());

    let failed = store.transition_run(run.id, RunStatus::Failed, Some("loss is NaN")).await.unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("loss is NaN"));
    assert_eq!(failed.started_at, running.started_at);
    assert!(failed.completed_at.unwrap() >= failed.started_at.unwrap());

    let refused = store.transition_run(run.id, RunStatus::Running, None).await.unwrap_err();
    match refused {
        StoreError::IllegalTransition { run: id, source } => {
            assert_eq!(id, run.id);
            assert_eq!((source.from, source.to), (RunStatus::Failed, RunStatus::Running));
        }
        other => panic!("expected an illegal transition, got {other}"),
    }
    assert_eq!(store.get_run(run.id).await.unwrap().unwrap(), failed, "a refused change writes nothing");

    let other = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    let cancelled = store.transition_run(other.id, RunStatus::Cancelled, Some("cancelled by user")).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(cancelled.started_at.is_none() && cancelled.completed_at.is_some());
    assert!(store.transition_run(other.id, RunStatus::Completed, None).await.is_err());
}

async fn logs_and_results_append_and_page_by_seq(store: Store) {
    let instance = store.create_instance(&draft("Records")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    assert_eq!(store.last_seq(run.id).await.unwrap(), 0);

    // 1,000 logs (every 10th a warning) interleaved with results every 100th seq; several append batches.
    let mut logs = Vec::new();
    let mut results = Vec::new();
    for seq in 1..=1_100 {
        if seq % 100 == 0 {
            results.push(result(seq, &format!("loss/{}", seq / 100), json!({"value": seq, "nested": [1, 2]})));
        } else if seq % 10 == 0 {
            logs.push(log(seq, LogLevel::Warn, &format!("warning {seq}")));
        } else {
            logs.push(log(seq, LogLevel::Info, &format!("line {seq} with 'quotes' and ünïcode")));
        }
    }
    for (log_chunk, result_chunk) in logs.chunks(300).zip(results.chunks(3).chain(std::iter::repeat(&[][..]))) {
        store.append_records(run.id, log_chunk, result_chunk).await.unwrap();
    }

    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 1_089);
    assert_eq!(store.count_logs(run.id, &[LogLevel::Warn]).await.unwrap(), 99);
    assert_eq!(store.count_logs(run.id, &[LogLevel::Warn, LogLevel::Info]).await.unwrap(), 1_089);
    assert_eq!(store.count_logs(run.id, &[LogLevel::Error]).await.unwrap(), 0);
    assert_eq!(store.count_results(run.id).await.unwrap(), 11);
    assert_eq!(store.last_seq(run.id).await.unwrap(), 1_100);
    let tally = store.tally(run.id).await.unwrap();
    let levels = LevelCounts { debug: 0, info: 990, warn: 99, error: 0 };
    assert_eq!(tally, RunTally { last_seq: 1_100, levels, results: 11 }, "kept as the batches committed");

    // Paging through everything with `after_seq` sees every log exactly once, in order, equal to what went in.
    let mut seen = Vec::new();
    let mut query = LogQuery::first(250);
    loop {
        let page = store.logs(run.id, &query).await.unwrap();
        if page.items.is_empty() {
            break;
        }
        query.after_seq = page.next_after_seq;
        seen.extend(page.items);
    }
    assert_eq!(seen.len(), logs.len());
    for (got, sent) in seen.iter().zip(&logs) {
        assert_eq!(
            (got.seq, got.level, &got.message, &got.metadata),
            (sent.seq, sent.level, &sent.message, &sent.metadata)
        );
        assert_eq!(got.ts.timestamp_micros(), sent.ts.timestamp_micros());
    }

    let warnings = store
        .logs(run.id, &LogQuery::first(3).after(500).filtered(LogFilter::levels(&[LogLevel::Warn])))
        .await
        .unwrap();
    let seqs: Vec<i64> = warnings.items.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, vec![510, 520, 530]);
    assert_eq!(warnings.next_after_seq, 530);

    let tail = store.results(run.id, 800, 100).await.unwrap();
    let keys: Vec<&str> = tail.items.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec!["loss/9", "loss/10", "loss/11"]);
    assert_eq!(tail.items[0].value, json!({"value": 900, "nested": [1, 2]}));
    let none = store.results(run.id, 1_100, 100).await.unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.next_after_seq, 1_100, "an empty page keeps the cursor where it was");
}

async fn a_batch_with_a_bad_record_writes_nothing(store: Store) {
    let instance = store.create_instance(&draft("Atomic")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    store.append_records(run.id, &[log(1, LogLevel::Info, "first")], &[]).await.unwrap();

    // A record of a run that does not exist: the foreign key refuses it, and the good records of the same batch
    // must not land either.
    let unknown_run = RunId::from(Uuid::new_v4());
    let (second, orphan, acc) =
        (log(2, LogLevel::Info, "second"), log(1, LogLevel::Info, "orphan"), result(3, "acc", json!(1)));
    let refused = store.append_rows(&[(run.id, &second), (unknown_run, &orphan)], &[(run.id, &acc)]).await;
    assert!(refused.is_err());
    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 1);
    assert_eq!(store.count_results(run.id).await.unwrap(), 0);

    assert!(store.append_records(unknown_run, &[log(1, LogLevel::Info, "orphan")], &[]).await.is_err());
}

async fn a_retried_append_whose_first_attempt_landed_succeeds_without_duplicates(store: Store) {
    let instance = store.create_instance(&draft("Idempotent")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    let logs = [log(1, LogLevel::Info, "one"), log(2, LogLevel::Warn, "two")];
    let results = [result(3, "acc", json!(0.5))];
    store.append_records(run.id, &logs, &results).await.unwrap();

    // The same batch again, as the writer retries it when the connection dropped after COMMIT: accepted, and
    // nothing is stored twice.
    store.append_records(run.id, &logs, &results).await.unwrap();
    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 2);
    assert_eq!(store.count_results(run.id).await.unwrap(), 1);

    // A retry that overlaps what landed: the stored rows stay as they were, the new ones are added.
    let overlapping = [log(2, LogLevel::Error, "two, again"), log(4, LogLevel::Info, "four")];
    store
        .append_records(run.id, &overlapping, &[result(3, "acc", json!(1.0)), result(5, "loss", json!(0.1))])
        .await
        .unwrap();
    let stored = store.logs(run.id, &LogQuery::first(10)).await.unwrap().items;
    let stored: Vec<(i64, &str)> = stored.iter().map(|l| (l.seq, l.message.as_str())).collect();
    assert_eq!(stored, [(1, "one"), (2, "two"), (4, "four")]);
    let stored = store.results(run.id, 0, 10).await.unwrap().items;
    let stored: Vec<(i64, &serde_json::Value)> = stored.iter().map(|r| (r.seq, &r.value)).collect();
    assert_eq!(stored, [(3, &json!(0.5)), (5, &json!(0.1))]);
    assert_eq!(store.last_seq(run.id).await.unwrap(), 5);
    // The totals count what is stored, not what was sent: a skipped row is not counted twice.
    let levels = LevelCounts { debug: 0, info: 2, warn: 1, error: 0 };
    assert_eq!(store.tally(run.id).await.unwrap(), RunTally { last_seq: 5, levels, results: 2 });
}

async fn a_retry_whose_stored_rows_come_late_in_the_batch_or_only_in_results_skips_them(store: Store) {
    let instance = store.create_instance(&draft("Late overlap")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    // The last lines of a large batch landed, the first ones not: the batch takes several statements, and the
    // stored rows are met only after others went in.
    let logs: Vec<LogRecord> = (1..=10_000).map(|seq| log(seq, LogLevel::Info, &format!("line {seq}"))).collect();
    store.append_records(run.id, &logs[9_990..], &[]).await.unwrap();
    store.append_records(run.id, &logs, &[]).await.unwrap();
    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 10_000);
    let levels = LevelCounts { debug: 0, info: 10_000, warn: 0, error: 0 };
    assert_eq!(store.tally(run.id).await.unwrap(), RunTally { last_seq: 10_000, levels, results: 0 });

    // New lines, and a result that is stored already: the lines are added, the result is not stored twice.
    store.append_records(run.id, &[], &[result(10_001, "acc", json!(0.5))]).await.unwrap();
    let more = [log(10_002, LogLevel::Warn, "more")];
    store.append_records(run.id, &more, &[result(10_001, "acc", json!(0.9))]).await.unwrap();
    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 10_001);
    let stored = store.results(run.id, 0, 10).await.unwrap().items;
    assert_eq!(stored.iter().map(|r| (r.seq, &r.value)).collect::<Vec<_>>(), [(10_001, &json!(0.5))]);
    let levels = LevelCounts { debug: 0, info: 10_000, warn: 1, error: 0 };
    assert_eq!(store.tally(run.id).await.unwrap(), RunTally { last_seq: 10_002, levels, results: 1 });
}

async fn searching_logs_by_text_and_level_covers_the_whole_run(store: Store) {
    let instance = store.create_instance(&draft("Search")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    // 5,000 lines; every 500th an error about a disk, and two lines whose text holds LIKE's wildcards.
    let mut logs: Vec<LogRecord> = (1..=5_000)
        .map(|seq| match seq % 500 {
            0 => log(seq, LogLevel::Error, &format!("Disk full at step {seq}")),
            _ => log(seq, LogLevel::Info, &format!("step {seq} of 5000")),
        })
        .collect();
    logs.push(log(5_001, LogLevel::Warn, "progress 100% done"));
    logs.push(log(5_002, LogLevel::Warn, "progress 100 done_ok"));
    for chunk in logs.chunks(700) {
        store.append_records(run.id, chunk, &[]).await.unwrap();
    }
    let seqs = |lines: &[LogRecord]| lines.iter().map(|line| line.seq).collect::<Vec<_>>();

    let disk = LogFilter::all().containing("DISK");
    let last_two = store.logs_before(run.id, i64::MAX, &disk, 2).await.unwrap();
    assert_eq!(seqs(&last_two), [4_500, 5_000], "the last matches, oldest first, case ignored");
    let earlier = store.logs_before(run.id, 4_500, &disk, 100).await.unwrap();
    assert_eq!(seqs(&earlier), (1..=8).map(|i| i * 500).collect::<Vec<_>>(), "paging back reaches the start");
    assert_eq!(store.count_matching(run.id, &disk, i64::MAX).await.unwrap(), 10);
    assert_eq!(store.count_matching(run.id, &disk, 4_500).await.unwrap(), 8, "counted before the cursor");

    let errors = LogFilter::levels(&[LogLevel::Error]);
    assert_eq!(store.count_matching(run.id, &errors, i64::MAX).await.unwrap(), 10);
    let info_disk = LogFilter::levels(&[LogLevel::Info]).containing("disk");
    assert_eq!(store.count_matching(run.id, &info_disk, i64::MAX).await.unwrap(), 0, "both parts must hold");

    // `%` and `_` are what the reader typed, not wildcards.
    let percent = store.logs_before(run.id, i64::MAX, &LogFilter::all().containing("100%"), 10).await.unwrap();
    assert_eq!(seqs(&percent), [5_001]);
    let underscore = store.logs_before(run.id, i64::MAX, &LogFilter::all().containing("e_o"), 10).await.unwrap();
    assert_eq!(seqs(&underscore), [5_002]);

    let after = store.logs(run.id, &LogQuery::first(3).after(1_000).filtered(disk.clone())).await.unwrap();
    assert_eq!(seqs(&after.items), [1_500, 2_000, 2_500]);
    let levels = LevelCounts { debug: 0, info: 4_990, warn: 2, error: 10 };
    assert_eq!(store.tally(run.id).await.unwrap(), RunTally { last_seq: 5_002, levels, results: 0 });
}

async fn refused_records_are_permanent_errors_and_a_lost_connection_is_transient(store: Store) {
    let instance = store.create_instance(&draft("Errors")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();

    // A foreign key violation (the run is gone) fails the same way however often it is retried.
    let unknown_run = RunId::from(Uuid::new_v4());
    let refused = store.append_records(unknown_run, &[log(1, LogLevel::Info, "orphan")], &[]).await.unwrap_err();
    assert!(!refused.is_transient(), "{refused}");

    // A value the database cannot store: PostgreSQL refuses NUL in text (SQLite stores it).
    let nul = [log(1, LogLevel::Info, "a\0b")];
    match store.backend() {
        Backend::Postgres => {
            let refused = store.append_records(run.id, &nul, &[]).await.unwrap_err();
            assert!(!refused.is_transient(), "{refused}");
        }
        Backend::Sqlite => store.append_records(run.id, &nul, &[]).await.unwrap(),
    }

    // No connection to be had: trying again later may work.
    store.close().await;
    let unreachable = store.append_records(run.id, &[log(2, LogLevel::Info, "later")], &[]).await.unwrap_err();
    assert!(unreachable.is_transient(), "{unreachable}");
}

async fn large_records_are_stored_in_statements_capped_in_bytes(store: Store) {
    let instance = store.create_instance(&draft("Large")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    // 3 MiB lines among small ones, and a 5 MiB result: several statements, one transaction.
    let big = "x".repeat(3 * 1024 * 1024);
    let logs: Vec<LogRecord> = (1..=2_000)
        .map(|seq| if seq % 700 == 0 { log(seq, LogLevel::Info, &big) } else { log(seq, LogLevel::Info, "small") })
        .collect();
    let results = [result(2_001, "blob", json!("y".repeat(5 * 1024 * 1024)))];
    store.append_records(run.id, &logs, &results).await.unwrap();
    assert_eq!(store.count_logs(run.id, &[]).await.unwrap(), 2_000);
    let stored = store.logs(run.id, &LogQuery::first(2_000)).await.unwrap().items;
    let lengths: Vec<usize> = stored.iter().filter(|l| l.message.len() > 5).map(|l| l.message.len()).collect();
    assert_eq!(lengths, [big.len(), big.len()]);
    let blob = store.results_with_key(run.id, "blob", 0, 1).await.unwrap().items;
    assert_eq!(blob[0].value.as_str().map(str::len), Some(5 * 1024 * 1024));
}

async fn pages_of_huge_records_stop_at_their_byte_bound_and_paging_reads_them_all(store: Store) {
    let instance = store.create_instance(&draft("Huge")).await.unwrap();
    let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
    // Twenty 1 MiB lines (the largest a run may log): a page of 1,000 holds only what fits in PAGE_BYTES.
    let line = "z".repeat(1024 * 1024);
    let logs: Vec<LogRecord> = (1..=20).map(|seq| log(seq, LogLevel::Info, &line)).collect();
    store.append_records(run.id, &logs, &[]).await.unwrap();
    let per_page = PAGE_BYTES.div_ceil(line.len());
    let first = store.logs(run.id, &LogQuery::first(1_000)).await.unwrap();
    assert_eq!((first.items.len(), first.full), (per_page, true), "stopped by bytes, not by the limit");
    let mut seen = first.items.len();
    let mut query = LogQuery::first(1_000).after(first.next_after_seq);
    loop {
        let page = store.logs(run.id, &query).await.unwrap();
        assert!(page.items.len() <= per_page);
        seen += page.items.len();
        if !page.full {
            break;
        }
        query.after_seq = page.next_after_seq;
    }
    assert_eq!(seen, 20, "every line, page after page");
    let tail = store.logs_before(run.id, i64::MAX, &LogFilter::all(), 1_000).await.unwrap();
    assert_eq!(tail.len(), per_page);
    assert_eq!(tail.last().map(|l| l.seq), Some(20), "the newest lines, however few fit");
    let small = store.logs(run.id, &LogQuery::first(1_000).after(19)).await.unwrap();
    assert_eq!((small.items.len(), small.full), (1, false), "the end of the run is not a full page");
}

async fn dashboard_summary_counts_runs_and_shows_the_latest(store: Store) {
    let idle = store.create_instance(&draft("Idle")).await.unwrap();
    let busy = store.create_instance(&draft("Busy")).await.unwrap();
    for _ in 0..3 {
        store.create_run(busy.id, &busy.config, "1").await.unwrap();
    }
    let latest = store.create_run(busy.id, &busy.config, "1").await.unwrap();
    store.transition_run(latest.id, RunStatus::Running, None).await.unwrap();

    let summaries = store.list_instances().await.unwrap();
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0].instance.id, busy.id, "newest instance first");
    assert_eq!(summaries[0].run_count, 4);
    let last = summaries[0].last_run.as_ref().unwrap();
    assert_eq!((last.id, last.status), (latest.id, RunStatus::Running));
    assert_eq!(summaries[1].instance, idle);
    assert_eq!(summaries[1].run_count, 0);
    assert!(summaries[1].last_run.is_none());
}

async fn missing_things_are_reported_not_invented(store: Store) {
    let nobody = InstanceId::from(Uuid::new_v4());
    assert_eq!(store.get_instance(nobody).await.unwrap(), None);
    assert!(
        matches!(store.update_instance(nobody, &draft("x")).await, Err(StoreError::InstanceNotFound(id)) if id == nobody)
    );
    assert!(
        matches!(store.create_run(nobody, &json!({}), "1").await, Err(StoreError::InstanceNotFound(id)) if id == nobody)
    );
    let no_run = RunId::from(Uuid::new_v4());
    assert!(
        matches!(store.transition_run(no_run, RunStatus::Running, None).await, Err(StoreError::RunNotFound(id)) if id == no_run)
    );
    assert_eq!(store.get_run(no_run).await.unwrap(), None);
    assert_eq!(store.count_instances().await.unwrap(), 0, "failed calls created nothing");
}

async fn an_error_message_with_nul_is_stored_with_the_replacement_character(store: Store) {
    let instance = store.create_instance(&draft("nul")).await.unwrap();
    let run = store.create_run(instance.id, &json!({}), "1").await.unwrap();
    store.transition_run(run.id, RunStatus::Running, None).await.unwrap();
    let failed = store.transition_run(run.id, RunStatus::Failed, Some("stderr: a\0b")).await.unwrap();
    assert_eq!(failed.status, RunStatus::Failed, "the run still ends");
    assert_eq!(failed.error.as_deref(), Some("stderr: a\u{FFFD}b"));
}

async fn runs_page_by_keyset_newest_first_without_gaps_or_repeats(store: Store) {
    use athanor_store::{RunFilter, RunKey};
    let instance = store.create_instance(&draft("keyset")).await.unwrap();
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(store.create_run(instance.id, &json!({}), "1").await.unwrap().id);
    }
    let filter = RunFilter { instance: Some(instance.id), ..RunFilter::default() };
    let mut seen = Vec::new();
    let mut after: Option<RunKey> = None;
    loop {
        let page = store.runs_after(&filter, after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(RunKey { created_at: last.run.created_at, id: last.run.id });
        seen.extend(page.iter().map(|listing| listing.run.id));
    }
    // The same order as the instance's own list (newest first, ties broken by id), each run exactly once.
    let listed: Vec<RunId> = store.list_runs(instance.id).await.unwrap().into_iter().map(|run| run.id).collect();
    assert_eq!(seen, listed);
    assert_eq!(seen.len(), created.len());
}
