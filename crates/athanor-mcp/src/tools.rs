//! The tools: each parses its arguments, calls one operation of [`Service`], and answers JSON.
//!
//! The doc comment of each tool method is its MCP description, so it is written for the agent that reads it in
//! `tools/list`: what the tool does, when to use it, and what it answers. Vocabulary on the wire follows the MCP
//! tools (an *experiment* is a saved configuration, a *module* is experiment code); the JSON answered is
//! Athanor's own types, where a saved configuration is an *instance* whose `experiment` field names its module.

use crate::answer::{answer, configuration_path, in_argument_names, instance_id, parsed, run_id, with_error_body};
use crate::args::{
    CompareRuns, CreateExperiment, ExperimentId, ListRuns, Module, ResultDetails as ResultDetailsArgs, RunIdArg,
    RunLogs, RunResults, StartRun, UpdateExperiment, ValidateConfig, WaitForRun,
};
use crate::results::{ResultDetails, ResultSummary};
use athanor_core::api::{InstanceChanges, InstanceInput};
use athanor_core::{ExperimentDefinition, LogFilter, LogLevel, ResultRecord, RunId, RunStatus};
use athanor_service::{RunQuery, Service, ServiceError, ServiceResult};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How many log lines `get_run_logs` returns when `limit` is not given.
const DEFAULT_LOG_TAIL: u32 = 100;
/// The most log lines `get_run_logs` returns: a tail an agent can read, not an export.
const MAX_LOG_TAIL: u32 = 1_000;

/// Result records read per page while summarising a run (the service caps a page at its own maximum).
const RESULT_PAGE: u32 = 5_000;

/// What the server tells an agent when it connects: the vocabulary and the usual order of calls.
const INSTRUCTIONS: &str = "Athanor runs experiments and records their logs and results.\n\
Vocabulary: a module is experiment code this server can run (list_available_modules, get_config_schema). \
An experiment is a saved configuration of one module (create_experiment, list_experiments); answers call it an \
instance, whose `experiment` field is its module's name and `config` its complete configuration. A run is one \
execution of an experiment with its own copy of the configuration; it goes pending -> running -> completed, \
failed or cancelled, and records log lines and results (keys with JSON values; a curve is a series of keys \
name/1, name/2, ...).\n\
Usual order: list_available_modules -> get_config_schema -> validate_config -> create_experiment -> start_run -> \
wait_for_run -> get_run_logs, list_results, get_result_details -> compare_runs.\n\
Every answer is a JSON object. A refused call answers isError with {code, message, fields: [{path, message}]}; \
each path names the argument to fix (configuration.epochs, id), so correct it and call again.";

/// Athanor's MCP tools over one [`Service`]: the `rmcp` server handler.
///
/// Cheap to clone (the service and the tool table are shared), which matters because the HTTP transport asks for
/// a handler per request in stateless mode. [`crate::service`] mounts it over streamable HTTP; the same handler
/// could serve any other rmcp transport.
#[derive(Clone)]
pub struct AthanorMcp {
    service: Service,
    tools: Arc<ToolRouter<AthanorMcp>>,
}

impl AthanorMcp {
    /// The tools over `service`.
    pub fn new(service: Service) -> AthanorMcp {
        AthanorMcp { service, tools: Arc::new(Self::tool_router()) }
    }

    /// The module named by the argument `experiment_module`; an unknown name is refused as that argument.
    fn module(&self, name: &str) -> ServiceResult<ExperimentDefinition> {
        self.service.experiment(name).map_err(|_| {
            ServiceError::invalid_field(
                "experiment_module",
                format!("no module named {name:?} on this server; list_available_modules lists the ones it has"),
            )
        })
    }

    /// Feed every result record of run `id` to `each`, oldest first, one page at a time, until `each` answers
    /// false or the records run out.
    async fn each_result(&self, id: RunId, mut each: impl FnMut(&ResultRecord) -> bool + Send) -> ServiceResult<()> {
        let mut after = 0;
        loop {
            let page = self.service.results(id, None, after, RESULT_PAGE).await?;
            let Some(last) = page.items.last() else { return Ok(()) };
            after = last.seq;
            for record in &page.items {
                if !each(record) {
                    return Ok(());
                }
            }
        }
    }
}

#[tool_router]
impl AthanorMcp {
    /// List every saved experiment (Athanor: instance) on this server, newest first, each with its run count and
    /// latest run. Use it to find an experiment's id or to see what has been run. Answers {"experiments": [{
    /// "instance": {id, experiment (the module), name, description, config, created_at, updated_at}, "run_count",
    /// "last_run": {id, status, created_at} or null}]}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_experiments(&self) -> CallToolResult {
        answer(self.service.list_instances().await.map(|experiments| json!({ "experiments": experiments })))
    }

    /// Get one saved experiment by id: its configuration, its module's definition (description, version and
    /// configuration schema; null when the server no longer has that module) and all its runs, newest first.
    /// Answers {"instance": {...}, "experiment": {name, description, version, schema} or null, "runs": [{id,
    /// status, config, created_at, started_at, completed_at, error, ...}]}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_experiment(&self, Parameters(args): Parameters<ExperimentId>) -> CallToolResult {
        answer(
            async {
                let id = instance_id(&args.id, "id")?;
                self.service.instance_details(id).await
            }
            .await,
        )
    }

    /// Create a saved experiment: a named configuration of one module, which start_run can then run any number of
    /// times. The configuration is validated against the module's schema (see get_config_schema; validate_config
    /// checks without saving) and completed with defaults; nothing is saved if any field is refused. Answers the
    /// new instance {id, experiment, name, description, config (complete), created_at, updated_at}; pass its `id`
    /// to start_run as `instance_id`.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn create_experiment(&self, Parameters(args): Parameters<CreateExperiment>) -> CallToolResult {
        let input = InstanceInput {
            experiment: args.experiment_module,
            name: args.name,
            description: args.description.unwrap_or_default(),
            config: args.configuration.unwrap_or_else(|| json!({})),
        };
        answer(self.service.create_instance(input).await.map_err(in_argument_names))
    }

    /// Edit a saved experiment's name, description or configuration; arguments left out keep their value. A new
    /// configuration replaces the old one whole (fields left out take defaults) and is validated like
    /// create_experiment's. Past runs keep the configuration they ran with; the module cannot change (create a new
    /// experiment instead). Answers the updated instance.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn update_experiment(&self, Parameters(args): Parameters<UpdateExperiment>) -> CallToolResult {
        answer(
            async {
                let id = instance_id(&args.id, "id")?;
                let changes =
                    InstanceChanges { name: args.name, description: args.description, config: args.configuration };
                self.service.update_instance(id, changes).await.map_err(in_argument_names)
            }
            .await,
        )
    }

    /// List the modules (experiment code) this server can run, by name, with a description and version. Call this
    /// first to choose what to configure; get_config_schema gives one module's configuration fields. Answers
    /// {"modules": [{name, description, version}]}, plus "manifest_problems" when the server's manifest of command
    /// experiments has errors (a module missing from the list may be why).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_available_modules(&self) -> CallToolResult {
        let modules: Vec<Value> = self
            .service
            .experiments()
            .into_iter()
            .map(|module| json!({"name": module.name, "description": module.description, "version": module.version}))
            .collect();
        let mut answer_json = json!({ "modules": modules });
        if let Some(report) = self.service.manifest_report() {
            answer_json["manifest_problems"] = json!(report);
        }
        answer(Ok(answer_json))
    }

    /// Get the configuration schema of one module: its fields in order, each with name, type (integer, float,
    /// string, boolean, group, list), description, default, bounds (min, max, step), options, and whether it is
    /// required. Also answers "defaults", the configuration you get by giving no fields. Use it before
    /// create_experiment to know which fields exist and what they accept. Answers {experiment_module, description,
    /// version, schema: {fields: [...]}, defaults}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_config_schema(&self, Parameters(args): Parameters<Module>) -> CallToolResult {
        answer(self.module(&args.experiment_module).map(|module| {
            json!({
                "experiment_module": module.name,
                "description": module.description,
                "version": module.version,
                "defaults": module.schema.defaults(),
                "schema": module.schema,
            })
        }))
    }

    /// Check a configuration against a module's schema without saving anything. Answers {"valid": true,
    /// "configuration": ...} with the configuration completed with defaults (what create_experiment would store),
    /// or {"valid": false, "fields": [{path, message}]} listing every refused field at once (paths such as
    /// configuration.epochs). An unknown module is an error.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn validate_config(&self, Parameters(args): Parameters<ValidateConfig>) -> CallToolResult {
        // The module is looked up first so that a refused module is an error, while refused fields are an answer.
        if let Err(error) = self.module(&args.experiment_module) {
            return answer::<()>(Err(error));
        }
        match self.service.validate_config(&args.experiment_module, &args.configuration) {
            Ok(configuration) => answer(Ok(json!({"valid": true, "configuration": configuration}))),
            Err(ServiceError::Invalid { fields, .. }) => {
                let fields: Vec<Value> = fields
                    .into_iter()
                    .map(|field| json!({"path": configuration_path(&field.path), "message": field.message}))
                    .collect();
                answer(Ok(json!({"valid": false, "fields": fields})))
            }
            Err(error) => answer::<()>(Err(error)),
        }
    }

    /// List runs across all experiments, newest first, optionally only one experiment's (instance_id) or one
    /// status. Answers {"runs": [{run: {id, instance_id, status, config, experiment_version, created_at,
    /// started_at, completed_at, error}, instance_name, experiment (the module)}], "next_cursor"}; pass
    /// next_cursor as cursor to get the next page (null on the last page).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_runs(&self, Parameters(args): Parameters<ListRuns>) -> CallToolResult {
        answer(
            async {
                let query = RunQuery {
                    instance: args.instance_id.as_deref().map(|id| instance_id(id, "instance_id")).transpose()?,
                    status: args.status.as_deref().map(|text| parsed::<RunStatus>(text, "status")).transpose()?,
                    cursor: args.cursor,
                    limit: args.limit,
                    ..RunQuery::default()
                };
                let page = self.service.list_runs(query).await?;
                Ok(json!({"runs": page.items, "next_cursor": page.next_cursor}))
            }
            .await,
        )
    }

    /// Get one run: status (pending, running, completed, failed, cancelled), the configuration it runs with, its
    /// module version, created/started/completed times, and the error message of a failed run. Answers the run.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_run(&self, Parameters(args): Parameters<RunIdArg>) -> CallToolResult {
        answer(
            async {
                let id = run_id(&args.id, "id")?;
                self.service.run(id).await
            }
            .await,
        )
    }

    /// Start a run of a saved experiment. The run gets its own copy of the experiment's configuration (checked
    /// again against the module's current schema) and starts at once, or waits as pending while the server is at
    /// its concurrency limit. Returns immediately; follow it with wait_for_run. Answers the new run (its `id` is
    /// what the other run tools take).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn start_run(&self, Parameters(args): Parameters<StartRun>) -> CallToolResult {
        answer(
            async {
                let id = instance_id(&args.instance_id, "instance_id")?;
                self.service.start_run(id).await
            }
            .await,
        )
    }

    /// Cancel a run. A pending run ends cancelled at once; a running one is asked to stop and is stopped by force
    /// after a grace period, so it may still show running right after this call (wait_for_run sees it end). A run
    /// that already ended is an error (code conflict). Answers the run as it is right after the request.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn cancel_run(&self, Parameters(args): Parameters<RunIdArg>) -> CallToolResult {
        answer(
            async {
                let id = run_id(&args.id, "id")?;
                self.service.cancel_run(id).await
            }
            .await,
        )
    }

    /// Read the tail of a run's log: its LAST `limit` lines (default 100, at most 1000), oldest first, optionally
    /// only the lines of one level (debug, info, warn or error; error lines are where to look when a run failed)
    /// and only lines containing a text (`contains`, ignoring case). Both filters search the whole run, not just
    /// its tail. Works while the run is still running. Answers {"run_id", "lines": [{seq, ts, level, message, metadata}]}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_run_logs(&self, Parameters(args): Parameters<RunLogs>) -> CallToolResult {
        answer(
            async {
                let id = run_id(&args.run_id, "run_id")?;
                let levels = match args.level.as_deref() {
                    Some(text) => vec![parsed::<LogLevel>(text, "level")?],
                    None => Vec::new(),
                };
                let limit = args.limit.unwrap_or(DEFAULT_LOG_TAIL).clamp(1, MAX_LOG_TAIL);
                let filter = LogFilter::levels(&levels).containing(args.contains.as_deref().unwrap_or_default());
                filter.check().map_err(|message| ServiceError::invalid_field("contains", message))?;
                let lines = self.service.logs_before(id, i64::MAX, &filter, limit).await?;
                Ok(json!({"run_id": id, "lines": lines}))
            }
            .await,
        )
    }

    /// Summarise what a run measured: one entry per result key with how many values it has and its latest value,
    /// and one entry per series (keys name/1, name/2, ... folded by name) with its point count, step range and
    /// value at the last step. Use it to see a run's outcome; get_result_details gives every value of one key.
    /// Answers {"run_id", "total_values", "keys": [{key, count, latest}], "series": [{name, points, first_step,
    /// last_step, latest}]}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_results(&self, Parameters(args): Parameters<RunResults>) -> CallToolResult {
        answer(
            async {
                let id = run_id(&args.run_id, "run_id")?;
                let mut summary = ResultSummary::new(id);
                self.each_result(id, |record| {
                    summary.add(record);
                    true
                })
                .await?;
                Ok(summary)
            }
            .await,
        )
    }

    /// Get every value recorded for one result key of a run, in the order recorded, e.g. a metric logged many
    /// times, or a whole curve: for a series name such as loss, "series" holds its points (loss/1, loss/2, ...) by
    /// step. Take the key from list_results. Answers {"run_id", "key", "values": [{seq, ts, value}], "series":
    /// [{step, value}], "truncated"} (truncated: more than 10,000 values, the rest left out).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_result_details(&self, Parameters(args): Parameters<ResultDetailsArgs>) -> CallToolResult {
        answer(
            async {
                let id = run_id(&args.run_id, "run_id")?;
                let mut details = ResultDetails::new(id, args.key);
                self.each_result(id, |record| {
                    details.add(record);
                    !details.truncated
                })
                .await?;
                if details.is_empty() {
                    return Err(ServiceError::NotFound(format!(
                        "run {id} has no result key or series named {:?}; list_results shows the keys it has",
                        details.key
                    )));
                }
                Ok(details)
            }
            .await,
        )
    }

    /// Wait until a run has ended (completed, failed or cancelled) or timeout_s seconds have passed (default 30,
    /// at most 600), whichever comes first. Use it after start_run instead of polling get_run. Answers {"run":
    /// {...}, "ended": true|false}; when ended is false the run is still pending or running: call again to keep
    /// waiting.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn wait_for_run(&self, Parameters(args): Parameters<WaitForRun>) -> CallToolResult {
        answer(
            async {
                let id = run_id(&args.id, "id")?;
                let timeout = args.timeout_s.map(Duration::from_secs);
                self.service.wait_for_run(id, timeout).await
            }
            .await,
        )
    }

    /// Compare runs side by side, in the order given: which configuration values differ, every result aligned by
    /// key (the latest value of each key per run), and the numeric series per run. Answers {"runs": [{id,
    /// instance_id, instance_name, status, started_at, duration_seconds, last_seq}], "config": [{key, values
    /// (one per run, null where absent), differs}], "results": [{key, values, differs}], "series": [{name, lines}]}.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn compare_runs(&self, Parameters(args): Parameters<CompareRuns>) -> CallToolResult {
        answer(
            async {
                let ids = args
                    .run_ids
                    .iter()
                    .enumerate()
                    .map(|(index, text)| run_id(text, &format!("run_ids[{index}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                self.service.compare(&ids).await.map_err(|error| match error {
                    // The service names the list `runs`; this tool's argument is `run_ids`.
                    ServiceError::Invalid { fields, .. } => ServiceError::invalid_fields(
                        fields
                            .into_iter()
                            .map(|mut field| {
                                if field.path == "runs" {
                                    field.path = "run_ids".into();
                                }
                                field
                            })
                            .collect(),
                    ),
                    other => other,
                })
            }
            .await,
        )
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for AthanorMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("athanor", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// Route the call to its tool, then give rmcp's own plain-text argument errors the [`ErrorBody`] shape every
    /// other refusal has (see `answer::with_error_body`).
    ///
    /// [`ErrorBody`]: athanor_core::api::ErrorBody
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let response = self.tools.call(ToolCallContext::new(self, request, context)).await?;
        Ok(with_error_body(response))
    }
}
