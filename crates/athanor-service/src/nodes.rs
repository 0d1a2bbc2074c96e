//! The processes that execute runs: the server itself, and worker nodes sharing a PostgreSQL database.

use crate::{Service, ServiceResult};
use athanor_core::api::WorkerNode;
use athanor_core::RunId;
use athanor_store::Backend;

impl Service {
    /// Every worker node that registered with this database, most recent heartbeat first. Empty on SQLite, where
    /// the server executes every run itself.
    pub async fn worker_nodes(&self) -> ServiceResult<Vec<WorkerNode>> {
        if self.store.backend() == Backend::Sqlite {
            return Ok(Vec::new());
        }
        let nodes = self.store.list_nodes().await?;
        Ok(nodes
            .into_iter()
            .map(|node| WorkerNode {
                name: node.info.name,
                host: node.info.host,
                pid: node.info.pid,
                capacity: node.info.capacity,
                running: node.running,
                experiments: node
                    .info
                    .experiments
                    .into_iter()
                    .map(|experiment| format!("{}@{}", experiment.name, experiment.version))
                    .collect(),
                started_at: node.started_at,
                heartbeat_at: node.heartbeat_at,
                stopped_at: node.stopped_at,
            })
            .collect())
    }

    /// The name of the node a run executes or executed on (`None` on SQLite, or before a node claimed it).
    pub async fn run_node(&self, id: RunId) -> ServiceResult<Option<String>> {
        if self.store.backend() == Backend::Sqlite {
            return Ok(None);
        }
        Ok(self.store.run_node(id).await?)
    }
}
