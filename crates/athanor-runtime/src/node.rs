//! A node of the shared queue: this process executes runs claimed from a PostgreSQL database that other
//! processes (the server, `athanor worker`s elsewhere) execute from too.
//!
//! [`Runtime::run_node`] is the node's life: it advertises the node (`workers` table), then until
//! [`Runtime::shutdown`] it
//!
//! - **claims** the oldest pending run of an experiment it knows whenever it has room — at once when a run is
//!   started here or ends here, when another node announces one (`LISTEN`), and on a poll that catches a missed
//!   announcement;
//! - **heartbeats** every [`NodeConfig::heartbeat`]: renews its runs' leases, and cancels those marked for
//!   cancelling (a cancel whose notification it missed);
//! - **keeps house**: ends as failed the runs of nodes whose leases expired (one node at a time, by advisory lock);
//! - **hears cancels** for its runs (`LISTEN`) and ends them the usual cooperative-then-forced way.
//!
//! The store holds the rules (`athanor_store` module `nodes`: claims, leases, fencing); this module only drives
//! them.

pub use crate::supervisor::{host_name, NodeConfig};
use crate::supervisor::{Runtime, RuntimeError};
use athanor_core::Progress;
use athanor_core::RunId;
use athanor_store::{
    NodeExperiment, NodeInfo, CANCEL_CHANNEL, PENDING_CHANNEL, PROGRESS_CHANNEL, RECORDS_CHANNEL, STATUS_CHANNEL,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

impl Runtime {
    /// Take part in the shared queue until [`Runtime::shutdown`] (see the module documentation). The runtime must
    /// have been built with [`crate::RuntimeConfig::node`]; its `max_concurrent_runs` is the node's capacity (0:
    /// execute nothing, only keep house and pass cancels on). Returns once the node stopped claiming; the runs it
    /// executes end through `shutdown` as usual.
    pub async fn run_node(&self) -> Result<(), RuntimeError> {
        let Some(config) = self.node_config().cloned() else { return Ok(()) };
        let id = Uuid::new_v4();
        let registry = self.registry();
        let experiments: Vec<NodeExperiment> = registry
            .definitions()
            .map(|definition| NodeExperiment { name: definition.name.to_string(), version: definition.version.clone() })
            .collect();
        let names: Vec<String> = experiments.iter().map(|experiment| experiment.name.clone()).collect();
        let info = NodeInfo {
            id,
            name: config.name.clone(),
            host: host_name(),
            pid: i64::from(std::process::id()),
            capacity: i32::try_from(self.capacity()).unwrap_or(i32::MAX),
            experiments,
        };
        self.store().register_node(&info).await?;
        tracing::info!(node = %config.name, capacity = info.capacity, "joined the shared queue");

        let heartbeat = tokio::spawn(self.clone().heartbeat(id, config.clone()));
        let progress = tokio::spawn(self.clone().pass_on_progress());
        let listener = tokio::spawn(self.clone().listen());
        let mut poll = tokio::time::interval(config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.is_shutting_down() {
            self.claim_while_room(id, &names, config.lease).await;
            tokio::select! {
                () = self.claim_wakeup() => {}
                _ = poll.tick() => {}
                () = self.shutdown_signal() => break,
            }
        }
        heartbeat.abort();
        listener.abort();
        progress.abort();
        self.wait_idle().await;
        if let Err(error) = self.store().stop_node(id).await {
            tracing::warn!(%error, "could not mark this node as stopped");
        }
        Ok(())
    }

    /// Claim and start runs while this node has room and the queue has runs it can execute.
    async fn claim_while_room(&self, node: Uuid, experiments: &[String], lease: Duration) {
        while self.has_room() && !self.is_shutting_down() {
            let claim = match self.store().claim_run(node, experiments, lease).await {
                Ok(Some(claim)) => claim,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "could not claim from the queue; trying again on the next poll");
                    return;
                }
            };
            if let Err(error) = self.start_claimed(claim).await {
                tracing::error!(run_id = %claim.run_id, %error, "a claimed run could not start");
            }
        }
    }

    /// Start a claimed run: find its experiment and execute it; a run this node cannot start after all ends
    /// failed, saying why (it was claimed, so nobody else would).
    async fn start_claimed(&self, claim: athanor_store::Claim) -> Result<(), RuntimeError> {
        let store = self.store();
        let run = store.get_run(claim.run_id).await?.ok_or(RuntimeError::RunNotFound(claim.run_id))?;
        let experiment = match store.get_instance(run.instance_id).await? {
            Some(instance) => instance.experiment.to_string(),
            None => return Ok(()), // deleted with its runs meanwhile
        };
        let registry = self.registry();
        let refused = match registry.get(&experiment) {
            None => Some(format!("experiment {experiment:?} is not available on this node")),
            Some(registered) => match registered.definition.schema.validate(&run.config) {
                Err(errors) => Some(format!("the configuration does not fit {experiment:?} on this node: {errors}")),
                Ok(config) => {
                    let run = athanor_core::Run { config, ..run };
                    if self.spawn_claimed(run, registered.clone(), claim) {
                        return Ok(());
                    }
                    // No room after all (shutting down): the lease runs out and housekeeping says so.
                    return Ok(());
                }
            },
        };
        if let Some(message) = refused {
            store.finish_claim(claim, athanor_core::RunStatus::Failed, Some(&message)).await?;
        }
        Ok(())
    }

    /// Renew this node's leases on a timer, pass on cancels it missed, and keep house.
    async fn heartbeat(self, node: Uuid, config: NodeConfig) {
        let mut beat = tokio::time::interval(config.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beat.tick().await;
            match self.store().renew_leases(node, config.lease).await {
                Ok(renewed) => {
                    for run in renewed.iter().filter(|run| run.cancel_requested) {
                        self.cancel_here(run.run_id);
                    }
                }
                Err(error) => tracing::warn!(%error, "could not renew this node's leases"),
            }
            match self.store().rescue_expired().await {
                Ok(Some(rescued)) => {
                    for run_id in rescued {
                        tracing::warn!(%run_id, "a node stopped responding: its run ended as failed");
                        if let Ok(Some(run)) = self.store().get_run(run_id).await {
                            self.announce_status_of(run);
                        }
                    }
                }
                Ok(None) => {} // another node keeps house now
                Err(error) => tracing::warn!(%error, "could not look for expired leases"),
            }
        }
    }

    /// Hear announcements of pending runs, cancels of this node's runs, and what other nodes do to runs this
    /// process shows: status changes go to its viewers and lists, committed records make its viewers read them
    /// from the database (the hub's `Stored` marker: the same no-gap catch-up as a lagging viewer's).
    async fn listen(self) {
        let channels = [PENDING_CHANNEL, CANCEL_CHANNEL, STATUS_CHANNEL, RECORDS_CHANNEL, PROGRESS_CHANNEL];
        let mut listener = match self.store().listen(&channels).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "could not listen for notifications; polling only");
                return;
            }
        };
        loop {
            let notice = match listener.recv().await {
                Ok(Some(notice)) => notice,
                Ok(None) => {
                    // The connection dropped and notifications may have been lost: everything watched here is read
                    // again (records and status); claims and cancels are caught by the poll and the heartbeat.
                    tracing::info!("notification listener reconnected; re-reading the runs watched here");
                    for run_id in self.hub().watched_runs() {
                        self.hub().announce_stored(run_id);
                        self.reannounce_status(run_id).await;
                    }
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "notification listener interrupted");
                    continue;
                }
            };
            if notice.channel == PROGRESS_CHANNEL {
                if let Ok(report) = serde_json::from_str::<ProgressReport>(&notice.payload) {
                    if self.active_run(report.run_id).is_none() {
                        self.hub().set_progress(report.run_id, report.progress);
                    }
                }
                continue;
            }
            let run_id = RunId::parse(&notice.payload).ok();
            match (notice.channel.as_str(), run_id) {
                (CANCEL_CHANNEL, Some(run_id)) => self.cancel_here(run_id),
                (PENDING_CHANNEL, _) => self.wake_claimer(),
                // Runs executing here are announced by this process as they change.
                (STATUS_CHANNEL, Some(run_id)) if self.active_run(run_id).is_none() => {
                    self.reannounce_status(run_id).await;
                }
                (RECORDS_CHANNEL, Some(run_id)) if self.active_run(run_id).is_none() => {
                    self.hub().announce_stored(run_id);
                }
                _ => {}
            }
        }
    }

    /// Read a run's status and tell this process's viewers and lists.
    async fn reannounce_status(&self, run_id: RunId) {
        if let Ok(Some(run)) = self.store().get_run(run_id).await {
            self.announce_status_of(run);
        }
    }

    /// Pass this node's runs' progress on to the other nodes, at most every [`PROGRESS_EVERY`] per run and only
    /// when it changed: progress is the latest state, not a record, so skipping intermediate reports loses nothing.
    async fn pass_on_progress(self) {
        let mut sent: HashMap<RunId, Progress> = HashMap::new();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let active = self.active_runs();
            sent.retain(|run_id, _| active.contains(run_id));
            let mut payloads = Vec::new();
            for run_id in active {
                let Some(progress) = self.hub().progress(run_id) else { continue };
                if sent.get(&run_id) == Some(&progress) {
                    continue;
                }
                let report = ProgressReport { run_id, progress: progress.clone() };
                if let Ok(payload) = serde_json::to_string(&report) {
                    payloads.push(payload);
                }
                sent.insert(run_id, progress);
            }
            if !payloads.is_empty() {
                if let Err(error) = self.store().notify_progress(&payloads).await {
                    tracing::debug!(%error, "could not pass progress on");
                }
            }
        }
    }

    /// Cancel a run if it executes here.
    fn cancel_here(&self, run_id: RunId) {
        if let Some(token) = self.active_run(run_id) {
            token.cancel();
        }
    }
}

/// How often a node passes its runs' progress on: often enough for a moving bar, rarely enough to be no load.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A run's progress as it travels between nodes. A progress message is at most 4 KiB, so the payload stays well
/// under PostgreSQL's 8,000-byte limit for a notification.
#[derive(Debug, Serialize, Deserialize)]
struct ProgressReport {
    run_id: RunId,
    progress: Progress,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_is_named_after_its_machine_and_process() {
        let config = super::NodeConfig::here();
        assert!(config.name.ends_with(&format!(":{}", std::process::id())), "{}", config.name);
        assert!(config.heartbeat * 3 < config.lease, "several heartbeats fit in a lease");
    }
}
