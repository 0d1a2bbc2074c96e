//! The shared run queue on PostgreSQL: claims, leases, fencing, rescue and cancels across nodes.

mod support;

use athanor_core::{RunId, RunStatus};
use athanor_store::{Claim, NodeExperiment, NodeInfo, Store, StoreError};
use std::collections::HashSet;
use std::time::Duration;
use support::{draft, TestDb};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

fn node(name: &str, experiments: &[&str]) -> NodeInfo {
    NodeInfo {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        host: "test-host".to_owned(),
        pid: 4242,
        capacity: 4,
        experiments: experiments
            .iter()
            .map(|name| NodeExperiment { name: (*name).to_owned(), version: "1".to_owned() })
            .collect(),
    }
}

fn can_run(node: &NodeInfo) -> Vec<String> {
    node.experiments.iter().map(|experiment| experiment.name.clone()).collect()
}

async fn pending_runs(store: &Store, count: usize) -> Vec<RunId> {
    let instance = store.create_instance(&draft("Queue")).await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..count {
        runs.push(store.create_run(instance.id, &instance.config, "1").await.unwrap().id);
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_claiming_at_once_take_each_of_300_runs_exactly_once_oldest_first() {
    let db = TestDb::postgres().await;
    let created = pending_runs(&db.store, 300).await;
    let mut claimers = Vec::new();
    for index in 0..3 {
        let store = db.store.clone();
        let me = node(&format!("node-{index}"), &["training_curve"]);
        store.register_node(&me).await.unwrap();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(claim) = store.claim_run(me.id, &can_run(&me), LEASE).await.unwrap() {
                mine.push(claim);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for claimer in claimers {
        let mine = claimer.await.unwrap();
        // Each node's claims come oldest first (creation order), whatever the others took in between.
        let order: Vec<usize> =
            mine.iter().map(|claim| created.iter().position(|id| *id == claim.run_id).unwrap()).collect();
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "oldest first: {order:?}");
        claimed.extend(mine);
    }
    let distinct: HashSet<RunId> = claimed.iter().map(|claim| claim.run_id).collect();
    assert_eq!((claimed.len(), distinct.len()), (300, 300), "every run claimed, none twice");
    assert!(claimed.iter().all(|claim| claim.attempt == 1));
    for id in &created {
        assert_eq!(db.store.get_run(*id).await.unwrap().unwrap().status, RunStatus::Running);
    }
    let nodes = db.store.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes.iter().map(|node| node.running).sum::<i64>(), 300);
}

#[tokio::test]
async fn a_node_claims_only_what_it_can_execute() {
    let db = TestDb::postgres().await;
    pending_runs(&db.store, 2).await;
    let other = node("gpu-box", &["something_else"]);
    db.store.register_node(&other).await.unwrap();
    assert_eq!(db.store.claim_run(other.id, &can_run(&other), LEASE).await.unwrap(), None);
}

#[tokio::test]
async fn an_expired_lease_fails_the_run_naming_its_node_and_the_old_owner_cannot_overwrite_it() {
    let db = TestDb::postgres().await;
    let [run] = pending_runs(&db.store, 1).await[..] else { unreachable!() };
    let frozen = node("frozen", &["training_curve"]);
    db.store.register_node(&frozen).await.unwrap();
    // A lease that has already run out: the node stopped heartbeating.
    let claim = db.store.claim_run(frozen.id, &can_run(&frozen), Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(claim, Claim { run_id: run, attempt: 1 });

    let rescued = db.store.rescue_expired().await.unwrap();
    assert_eq!(rescued, Some(vec![run]));
    let ended = db.store.get_run(run).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.error.as_deref()), (RunStatus::Failed, Some("worker frozen stopped responding")));

    // The frozen node wakes up and reports success: fenced off, the failure stands.
    assert!(!db.store.finish_claim(claim, RunStatus::Completed, None).await.unwrap());
    assert_eq!(db.store.get_run(run).await.unwrap().unwrap().status, RunStatus::Failed);
    assert_eq!(db.store.rescue_expired().await.unwrap(), Some(vec![]), "nothing rescued twice");
}

#[tokio::test]
async fn heartbeats_keep_a_run_alive_and_carry_a_cancel_to_its_owner() {
    let db = TestDb::postgres().await;
    let [run, waiting] = pending_runs(&db.store, 2).await[..] else { unreachable!() };
    let owner = node("owner", &["training_curve"]);
    db.store.register_node(&owner).await.unwrap();
    let claim = db.store.claim_run(owner.id, &can_run(&owner), Duration::ZERO).await.unwrap().unwrap();
    let renewed = db.store.renew_leases(owner.id, LEASE).await.unwrap();
    assert_eq!(renewed.len(), 1);
    assert!(!renewed[0].cancel_requested);
    assert_eq!(db.store.rescue_expired().await.unwrap(), Some(vec![]), "a renewed lease is not expired");

    // Cancelling a running run marks it for its owner; cancelling a pending one ends it at once.
    assert_eq!(db.store.request_cancel(claim.run_id).await.unwrap(), Some(RunStatus::Running));
    assert!(db.store.renew_leases(owner.id, LEASE).await.unwrap()[0].cancel_requested);
    assert_eq!(db.store.request_cancel(waiting).await.unwrap(), Some(RunStatus::Cancelled));
    assert_eq!(
        db.store.claim_run(owner.id, &can_run(&owner), LEASE).await.unwrap(),
        None,
        "a cancelled run waits no more"
    );

    assert!(db.store.finish_claim(claim, RunStatus::Cancelled, Some("cancelled by user")).await.unwrap());
    let ended = db.store.get_run(run).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.error.as_deref()), (RunStatus::Cancelled, Some("cancelled by user")));
    assert_eq!(db.store.run_node(run).await.unwrap().as_deref(), Some("owner"));
    assert_eq!(db.store.request_cancel(run).await.unwrap(), None, "an ended run is not cancelled again");
}

#[tokio::test]
async fn sqlite_says_that_nodes_need_postgres() {
    let db = TestDb::sqlite().await;
    let refused = db.store.claim_run(Uuid::new_v4(), &[], LEASE).await.unwrap_err();
    assert!(matches!(refused, StoreError::NeedsPostgres(_)));
    assert!(refused.to_string().contains("need PostgreSQL"), "{refused}");
}
