//! The command tree, as clap parses it. Doc comments on fields are the `--help` text, so they are written for
//! the person at the terminal; each command's `after_help` carries its examples.
//!
//! Ids are parsed here, with [`RunId::parse`] and [`InstanceId::parse`], so a mistyped id is refused before any
//! request with an error that says which kind of id was expected.

use crate::config::{parse_assignment, parse_json_object, Assignment};
use athanor_core::{InstanceId, LogLevel, RunId, RunStatus};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use std::path::PathBuf;

/// The heading of the options every command takes, so they do not interleave with a command's own.
const GLOBAL: &str = "Global options";

const ABOUT: &str = "Athanor: define, run and compare experiments.";

const LONG_ABOUT: &str = "Athanor: define, run and compare experiments.

`athanor serve` (or `athanor` alone) runs the server and its dashboard; every other command is a client of that \
server's JSON API at --url (ATHANOR_URL), sending --token (ATHANOR_TOKEN) when one is set.";

const MAIN_EXAMPLES: &str = "\
Examples:
  athanor serve                            # server and dashboard on :3000
  athanor experiments                      # what can be configured
  athanor instances create --experiment sleeper --name quick --set seconds=2
  athanor runs start <INSTANCE> --follow   # live; exit 0/3/4 by outcome
  athanor runs list --status failed --json # raw JSON for scripts
  ATHANOR_URL=http://gpu-box:3000 athanor runs list";

/// The `athanor` command line.
#[derive(Debug, Parser)]
#[command(name = "athanor", version, about = ABOUT, long_about = LONG_ABOUT, after_help = MAIN_EXAMPLES)]
#[command(propagate_version = true)]
pub struct Cli {
    /// The Athanor server to talk to.
    #[arg(long, global = true, env = "ATHANOR_URL", default_value = "http://127.0.0.1:3000", value_name = "URL")]
    #[arg(value_parser = parse_url, help_heading = GLOBAL)]
    pub(crate) url: reqwest::Url,

    /// Sent as `Authorization: Bearer <TOKEN>` with every request.
    // `hide_env_values`: `--help` must not print a secret taken from the environment.
    #[arg(long, global = true, env = "ATHANOR_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    #[arg(help_heading = GLOBAL)]
    pub(crate) token: Option<String>,

    /// Print the server's JSON answer (pretty) instead of tables; with --follow, one JSON event per line.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) json: bool,

    /// What to do; none at all serves, so `cargo leptos watch` (which runs the binary bare) and old scripts keep
    /// working.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

impl Cli {
    /// Whether the command is `athanor serve`, which the binary handles by running the server; every other
    /// command goes to [`crate::run`].
    pub fn is_serve(&self) -> bool {
        matches!(self.command, None | Some(Command::Serve))
    }

    /// For `athanor worker`, which the binary handles by joining the shared queue: the node's name and capacity
    /// when given.
    pub fn worker(&self) -> Option<(Option<String>, Option<usize>)> {
        match &self.command {
            Some(Command::Worker { name, capacity }) => Some((name.clone(), *capacity)),
            _ => None,
        }
    }
}

const WORKER_EXAMPLES: &str = "Examples:\n  DATABASE_URL=postgres://db/athanor athanor worker\n  \
    DATABASE_URL=postgres://db/athanor athanor worker --name gpu --capacity 2";

const SERVE_HELP: &str = "\
Run the Athanor server: the dashboard, the JSON API under /api/v1 and the runs themselves.

It is configured by environment variables:

  DATABASE_URL                 sqlite://path or postgres://…
                               (default sqlite://athanor.db)
  ATHANOR_ADDR                 listen address (default 127.0.0.1:3000;
                               loopback unless you say otherwise)
  ATHANOR_ALLOWED_HOSTS        extra host:port names the server answers to
                               (behind a proxy)
  ATHANOR_TOKEN                the access token required when ATHANOR_ADDR is
                               not loopback (16+ characters); clients send it
                               as Authorization: Bearer, and the athanor
                               client commands read this same variable
  ATHANOR_TOKEN_FILE           where the token is kept when ATHANOR_TOKEN is
                               unset (default ./athanor.token; created with a
                               new token, printed once)
  ATHANOR_MAX_CONCURRENT_RUNS  runs executing at once (default 8); more wait
                               as pending, oldest first
  ATHANOR_CANCEL_GRACE_SECS    how long a cancelled run may take to stop
                               before it is aborted (default 5)
  ATHANOR_RUN_TIMEOUT_SECS     a run still executing after this fails as
                               timed out (default 86400; 0: never)
  ATHANOR_EXPERIMENT_THREADS   threads Rust experiment code runs on, apart
                               from the ones serving requests (default one
                               per core)
  ATHANOR_SEED_DEMOS           0 skips the demo instances on an empty
                               database (default 1)
  ATHANOR_EXPERIMENTS          the manifest of command experiments
                               (default ./athanor.toml if present)
  LEPTOS_SITE_ROOT             the dashboard's WebAssembly, JavaScript and
                               CSS (default target/site)
  RUST_LOG                     what the server logs to stderr
                               (default warn,athanor=info)

Ctrl-C (or SIGTERM) stops it cleanly: executing runs end `failed` (\"server shutting down\") with every line stored; \
waiting runs stay pending for the next start. A second Ctrl-C exits at once.";

const SERVE_EXAMPLES: &str = "\
Examples:
  athanor serve
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/athanor athanor serve
  ATHANOR_ADDR=0.0.0.0:8080 ATHANOR_TOKEN=$(openssl rand -hex 16) athanor serve";

const EXPERIMENTS_EXAMPLES: &str = "\
Examples:
  athanor experiments                  # name, version and description of each
  athanor experiments training_curve   # one experiment and its fields
  athanor experiments --json";

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (configured by environment variables; see `athanor serve --help`).
    #[command(long_about = SERVE_HELP, after_help = SERVE_EXAMPLES)]
    Serve,

    /// Execute runs from the queue a server shares on PostgreSQL, as one more node (no HTTP; needs the server's
    /// DATABASE_URL). Stops cleanly on Ctrl-C or SIGTERM.
    #[command(after_help = WORKER_EXAMPLES)]
    Worker {
        /// What the workers page calls this node (default host:pid).
        #[arg(long)]
        name: Option<String>,
        /// Runs it executes at once (default ATHANOR_MAX_CONCURRENT_RUNS, or 8).
        #[arg(long)]
        capacity: Option<usize>,
    },

    /// List the experiments the server can run, or show one with its configuration fields.
    #[command(after_help = EXPERIMENTS_EXAMPLES)]
    Experiments {
        /// Show this experiment's fields (types, defaults, limits) instead of the list.
        name: Option<String>,
    },

    /// Saved configurations of experiments: list, show, create, edit, clone, delete.
    #[command(subcommand)]
    Instances(InstancesCommand),

    /// Executions of instances: list, show, start (and follow), cancel, logs, results, export.
    #[command(subcommand)]
    Runs(RunsCommand),

    /// Compare runs side by side: configuration differences and results aligned by key.
    #[command(after_help = COMPARE_EXAMPLES)]
    Compare {
        /// The runs, in column order (at least two).
        #[arg(required = true, num_args = 2.., value_name = "RUN")]
        runs: Vec<RunId>,
    },
}

const COMPARE_EXAMPLES: &str = "\
Examples:
  athanor compare 0192f0c2-… 0192f0c3-…
  athanor compare $(athanor runs list --instance <ID> --status completed \\
      --json | jq -r '.items[].run.id')";

const INSTANCES_EXAMPLES: &str = "\
Examples:
  athanor instances list
  athanor instances create --experiment training_curve --name baseline \\
      --set epochs=50 --set optimizer.lr=0.01
  athanor instances edit <ID> --set 'pairs[1].runs=5'
  athanor instances clone <ID> --name 'baseline, more epochs'
  athanor instances rm <ID> --yes";

/// `athanor instances …`
#[derive(Debug, Subcommand)]
#[command(after_help = INSTANCES_EXAMPLES)]
pub(crate) enum InstancesCommand {
    /// List instances with their experiment, run count and last run.
    #[command(
        after_help = "Examples:\n  athanor instances list\n  athanor instances list --json | jq -r '.[].instance.id'"
    )]
    List,

    /// Show an instance: its configuration and its runs, newest first.
    #[command(
        after_help = "Examples:\n  athanor instances show <ID>\n  athanor instances show <ID> --json | jq .instance.config"
    )]
    Show {
        /// The instance's id (a UUID, as `athanor instances list` shows it).
        id: InstanceId,
    },

    /// Create an instance. The server validates the configuration and fills in defaults; a refused configuration
    /// is answered with every field error at once.
    #[command(after_help = CREATE_EXAMPLES)]
    Create {
        /// The experiment to configure (see `athanor experiments`).
        #[arg(long, value_name = "NAME")]
        experiment: String,
        /// A name for the instance (1–200 characters).
        #[arg(long)]
        name: String,
        /// Optional notes.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },

    /// Edit an instance: each option given replaces that part; the rest stays. Runs already made keep the
    /// configuration they ran with.
    #[command(after_help = EDIT_EXAMPLES)]
    Edit {
        /// The instance's id.
        id: InstanceId,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// New notes.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },

    /// Copy an instance (experiment, configuration, notes) under a new name.
    #[command(
        after_help = "Examples:\n  athanor instances clone <ID>\n  athanor instances clone <ID> --name 'baseline, lr 0.1'"
    )]
    Clone {
        /// The instance to copy.
        id: InstanceId,
        /// The copy's name (default: the server's, e.g. "baseline (copy)").
        #[arg(long)]
        name: Option<String>,
    },

    /// Delete an instance and all its runs, logs and results.
    #[command(visible_alias = "delete")]
    #[command(
        after_help = "Examples:\n  athanor instances rm <ID>         # asks first\n  athanor instances rm <ID> --yes   # in scripts"
    )]
    Rm {
        /// The instance to delete.
        id: InstanceId,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

const CREATE_EXAMPLES: &str = "\
Examples:
  athanor instances create --experiment sleeper --name quick
  athanor instances create --experiment training_curve --name sweep-1 \\
      --set epochs=50 --set lr=0.01
  athanor instances create --experiment llm_eval --name eval \\
      --config '{\"model\": \"gpt-4\", \"questions\": 20}'
  athanor instances create --experiment llm_eval --name eval \\
      --config-file eval.json --set questions=5

--set KEY=VALUE (repeatable) sets one value by path (epochs, api.timeout, pairs[0].runs; an index one past the \
end appends). VALUE is JSON when it parses as JSON (3, 0.5, true, [1,2], {\"a\":1}) and a string otherwise \
(gpt-4); quote it to force a string: --set 'version=\"1.0\"'. --set applies on top of --config/--config-file.";

const EDIT_EXAMPLES: &str = "\
Examples:
  athanor instances edit <ID> --name 'baseline v2'
  athanor instances edit <ID> --set epochs=100        # one value, keeps others
  athanor instances edit <ID> --config-file new.json  # the whole configuration

With only --set, the instance's current configuration is edited; with --config or --config-file, that replaces it \
(and --set applies on top).";

/// Where a configuration comes from: a JSON object, a file, and/or single values.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The configuration as a JSON object; fields left out take their defaults.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object, conflicts_with = "config_file")]
    pub(crate) config: Option<Value>,

    /// Read the configuration (a JSON object) from a file; `-` reads standard input.
    #[arg(long, value_name = "PATH")]
    pub(crate) config_file: Option<PathBuf>,

    /// Set one value by path, e.g. `epochs=20`, `api.timeout=30`, `pairs[0].runs=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub(crate) sets: Vec<Assignment>,
}

const RUNS_EXAMPLES: &str = "\
Examples:
  athanor runs start <INSTANCE> --follow
  athanor runs list --instance <INSTANCE> --status completed
  athanor runs logs <RUN> --level warn,error --tail 50
  athanor runs results <RUN> --key accuracy
  athanor runs export <RUN> --what logs --format csv -o logs.csv";

/// `athanor runs …`
#[derive(Debug, Subcommand)]
#[command(after_help = RUNS_EXAMPLES)]
pub(crate) enum RunsCommand {
    /// List runs across instances, newest first.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// Only runs of this instance.
        #[arg(long, value_name = "ID")]
        instance: Option<InstanceId>,
        /// Only runs of instances of this experiment.
        #[arg(long, value_name = "NAME")]
        experiment: Option<String>,
        /// Only runs with this status: pending, running, completed, failed or cancelled.
        #[arg(long, value_name = "STATUS")]
        status: Option<RunStatus>,
        /// At most this many per page (the server's default is 50, its maximum 500).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Follow the pages to the end instead of stopping after the first.
        #[arg(long)]
        all: bool,
    },

    /// Show a run: status, times, error, and the configuration it ran with.
    #[command(after_help = "Examples:\n  athanor runs show <RUN>\n  athanor runs show <RUN> --json | jq -r .status")]
    Show {
        /// The run's id.
        id: RunId,
    },

    /// Start a run of an instance. Prints the new run; --follow streams it live, --wait waits quietly for its end.
    #[command(after_help = START_HELP)]
    Start {
        /// The instance to run.
        instance: InstanceId,
        /// Stream the run live: log lines, a progress bar, results, then a summary line. Exit status: 0 completed,
        /// 3 failed, 4 cancelled, 130 Ctrl-C.
        #[arg(long, short = 'f', conflicts_with = "wait")]
        follow: bool,
        /// Wait for the run's end without streaming, print a summary, and exit 0 completed, 3 failed,
        /// 4 cancelled.
        #[arg(long)]
        wait: bool,
    },

    /// Cancel a run: a pending one ends at once; a running one is asked to stop, then stopped by force after the
    /// server's grace period.
    #[command(
        after_help = "Examples:\n  athanor runs cancel <RUN>\n  athanor runs cancel <RUN> --json | jq -r .status  # running while it stops"
    )]
    Cancel {
        /// The run to cancel.
        id: RunId,
    },

    /// Print a run's log lines (all of them, or the last N), optionally following new ones live.
    #[command(after_help = LOGS_HELP)]
    Logs {
        /// The run.
        id: RunId,
        /// Only these levels, comma-separated: debug, info, warn, error (e.g. `--level warn,error`).
        #[arg(long, value_name = "LEVELS", value_delimiter = ',')]
        level: Vec<LogLevel>,
        /// Only the last N lines (then, with --follow, the new ones).
        #[arg(long, value_name = "N")]
        tail: Option<u32>,
        /// Keep printing new lines (with a progress bar) until the run ends. Exit status as for `runs start
        /// --follow`.
        #[arg(long, short = 'f')]
        follow: bool,
    },

    /// Print a run's results as `key = value`, in the order they were recorded.
    #[command(
        after_help = "Examples:\n  athanor runs results <RUN>\n  athanor runs results <RUN> --key loss --json | jq '[.items[].value]'"
    )]
    Results {
        /// The run.
        id: RunId,
        /// Only results with this key (a series such as `loss` recorded many times gives one line per value).
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },

    /// Download a run's logs or results as CSV or JSON (the dashboard's download links).
    #[command(after_help = EXPORT_EXAMPLES)]
    Export {
        /// The run.
        id: RunId,
        /// What to download.
        #[arg(long, value_enum)]
        what: ExportWhat,
        /// In which format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

const LIST_EXAMPLES: &str = "\
Examples:
  athanor runs list
  athanor runs list --experiment training_curve --status completed --limit 10
  athanor runs list --all --json | jq '.items | length'";

const START_HELP: &str = concat!(
    "Examples:
  athanor runs start <INSTANCE>             # prints the new run and returns
  athanor runs start <INSTANCE> --follow    # live logs, progress and results
  athanor runs start <INSTANCE> --wait && echo completed
  athanor runs start <INSTANCE> --json | jq -r .id

",
    "While following, log lines print as they arrive (time, level, message), a progress bar stays at the bottom, \
results print as `key = value`, and a summary line ends it.

Exit status: 0 the run completed, 3 it failed, 4 it was cancelled, 130 you pressed Ctrl-C; 1 when the command \
itself did not get done (the server refused it or could not be reached), 2 for a wrong command line.

Ctrl-C stops following only: the run goes on on the server. To stop the run itself, use `athanor runs cancel \
<RUN>`."
);

const LOGS_HELP: &str = concat!(
    "Examples:
  athanor runs logs <RUN>
  athanor runs logs <RUN> --level warn,error
  athanor runs logs <RUN> --tail 20 --follow

",
    "With --follow: while following, log lines print as they arrive (time, level, message), a progress bar stays \
at the bottom, and a summary line ends it.

Exit status with --follow: 0 the run completed, 3 it failed, 4 it was cancelled, 130 you pressed Ctrl-C; 1 when \
the command itself did not get done. Ctrl-C stops following only: the run goes on on the server. To stop the run itself, use `athanor runs \
cancel <RUN>`."
);

const EXPORT_EXAMPLES: &str = "\
Examples:
  athanor runs export <RUN> --what results --format csv -o results.csv
  athanor runs export <RUN> --what logs --format json \\
      | jq '.[] | select(.level == \"error\")'";

/// What `runs export` downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportWhat {
    /// Every log line: seq, ts, level, message, metadata.
    Logs,
    /// Every result: seq, ts, key, value.
    Results,
}

/// The format of `runs export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON array.
    Json,
}

/// `--url`: an http(s) URL that paths can be appended to.
fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|error| format!("{text:?} is not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Segment;
    use clap::CommandFactory;
    use serde_json::json;

    const RUN: &str = "0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11";
    const INSTANCE: &str = "0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e22";

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["athanor"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap_or_else(|error| panic!("{args:?}: {error}"))
    }

    fn refused(args: &[&str]) -> String {
        let mut argv = vec!["athanor"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => panic!("{args:?} was accepted: {cli:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere_and_default_sensibly() {
        // ATHANOR_URL / ATHANOR_TOKEN may be set where the tests run; `--url` on the command line wins over both.
        let cli = parse(&["runs", "list", "--json", "--url", "http://lab:8080/athanor/", "--token", "s3cret"]);
        assert!(cli.json);
        assert_eq!(cli.url.as_str(), "http://lab:8080/athanor/");
        assert_eq!(cli.token.as_deref(), Some("s3cret"));
        assert!(!cli.is_serve());
        assert!(parse(&["serve"]).is_serve());
        assert!(parse(&[]).is_serve(), "no command serves, as `cargo leptos watch` runs the binary");
        assert!(refused(&["--url", "ftp://x", "experiments"]).contains("not an http:// or https:// URL"));
    }

    #[test]
    fn experiments_takes_an_optional_name() {
        assert!(matches!(parse(&["experiments"]).command.unwrap(), Command::Experiments { name: None }));
        let cli = parse(&["experiments", "sleeper"]);
        assert!(matches!(cli.command.unwrap(), Command::Experiments { name: Some(ref n) } if n == "sleeper"));
    }

    #[test]
    fn instances_commands_parse_ids_and_configuration() {
        let cli = parse(&[
            "instances",
            "create",
            "--experiment",
            "training_curve",
            "--name",
            "base",
            "--set",
            "a.b=3",
            "--set",
            "pairs[0].model=gpt-4",
        ]);
        let Command::Instances(InstancesCommand::Create { experiment, name, description, config }) =
            cli.command.unwrap()
        else {
            panic!("not create")
        };
        assert_eq!((experiment.as_str(), name.as_str(), description), ("training_curve", "base", None));
        assert_eq!(config.sets.len(), 2);
        assert_eq!(config.sets[0].path, vec![Segment::Key("a".into()), Segment::Key("b".into())]);
        assert_eq!(config.sets[0].value, json!(3));
        let mut built = json!({});
        for set in &config.sets {
            set.apply(&mut built).unwrap();
        }
        assert_eq!(built, json!({"a": {"b": 3}, "pairs": [{"model": "gpt-4"}]}));

        let cli = parse(&["instances", "edit", INSTANCE, "--config", r#"{"epochs": 2}"#, "--description", "d"]);
        let Command::Instances(InstancesCommand::Edit { id, name, description, config }) = cli.command.unwrap() else {
            panic!("not edit")
        };
        assert_eq!(id.to_string(), INSTANCE);
        assert_eq!((name, description.as_deref()), (None, Some("d")));
        assert_eq!(config.config, Some(json!({"epochs": 2})));

        assert!(matches!(parse(&["instances", "list"]).command.unwrap(), Command::Instances(InstancesCommand::List)));
        assert!(matches!(
            parse(&["instances", "show", INSTANCE]).command.unwrap(),
            Command::Instances(InstancesCommand::Show { .. })
        ));
        assert!(matches!(
            parse(&["instances", "clone", INSTANCE, "--name", "copy"]).command.unwrap(),
            Command::Instances(InstancesCommand::Clone { name: Some(_), .. })
        ));
        assert!(matches!(
            parse(&["instances", "rm", INSTANCE, "--yes"]).command.unwrap(),
            Command::Instances(InstancesCommand::Rm { yes: true, .. })
        ));
    }

    #[test]
    fn malformed_input_is_refused_before_any_request() {
        let error = refused(&["instances", "show", "abc"]);
        assert!(error.contains("\"abc\" is not a valid instance id"), "{error}");
        let error = refused(&["runs", "show", INSTANCE.replace('2', "x").as_str()]);
        assert!(error.contains("is not a valid run id"), "{error}");
        let error = refused(&["instances", "create", "--experiment", "x", "--name", "n", "--set", "epochs"]);
        assert!(error.contains("KEY=VALUE"), "{error}");
        let error = refused(&["instances", "create", "--experiment", "x", "--name", "n", "--config", "[1]"]);
        assert!(error.contains("must be a JSON object"), "{error}");
        refused(&["instances", "create", "--experiment", "x", "--name", "n", "--config", "{}", "--config-file", "f"]);
        refused(&["instances", "create", "--name", "n"]);
        refused(&["runs", "list", "--status", "done"]);
        refused(&["runs", "logs", RUN, "--level", "verbose"]);
        refused(&["runs", "start", INSTANCE, "--follow", "--wait"]);
        refused(&["compare", RUN]);
        refused(&["runs", "export", RUN, "--what", "logs"]);
    }

    #[test]
    fn runs_commands_parse() {
        let cli = parse(&["runs", "list", "--instance", INSTANCE, "--experiment", "x", "--status", "failed"]);
        let Command::Runs(RunsCommand::List { instance, experiment, status, limit, all }) = cli.command.unwrap() else {
            panic!("not list")
        };
        assert_eq!(instance.map(|i| i.to_string()).as_deref(), Some(INSTANCE));
        assert_eq!((experiment.as_deref(), status, limit, all), (Some("x"), Some(RunStatus::Failed), None, false));
        assert!(matches!(
            parse(&["runs", "list", "--limit", "5", "--all"]).command.unwrap(),
            Command::Runs(RunsCommand::List { limit: Some(5), all: true, .. })
        ));
        assert!(matches!(
            parse(&["runs", "start", INSTANCE, "-f"]).command.unwrap(),
            Command::Runs(RunsCommand::Start { follow: true, wait: false, .. })
        ));
        assert!(matches!(
            parse(&["runs", "start", INSTANCE, "--wait"]).command.unwrap(),
            Command::Runs(RunsCommand::Start { follow: false, wait: true, .. })
        ));
        assert!(matches!(parse(&["runs", "cancel", RUN]).command.unwrap(), Command::Runs(RunsCommand::Cancel { .. })));
        assert!(matches!(parse(&["runs", "show", RUN]).command.unwrap(), Command::Runs(RunsCommand::Show { .. })));

        let cli = parse(&["runs", "logs", RUN, "--level", "warn,error", "--tail", "20", "--follow"]);
        let Command::Runs(RunsCommand::Logs { level, tail, follow, .. }) = cli.command.unwrap() else {
            panic!("not logs")
        };
        assert_eq!((level, tail, follow), (vec![LogLevel::Warn, LogLevel::Error], Some(20), true));

        let cli = parse(&["runs", "results", RUN, "--key", "loss"]);
        assert!(
            matches!(cli.command.unwrap(), Command::Runs(RunsCommand::Results { key: Some(ref k), .. }) if k == "loss")
        );

        let cli = parse(&["runs", "export", RUN, "--what", "results", "--format", "json", "-o", "r.json"]);
        let Command::Runs(RunsCommand::Export { what, format, output, .. }) = cli.command.unwrap() else {
            panic!("not export")
        };
        assert_eq!((what, format, output), (ExportWhat::Results, ExportFormat::Json, Some("r.json".into())));
    }

    #[test]
    fn compare_takes_two_or_more_runs() {
        let cli = parse(&["compare", RUN, RUN, RUN]);
        assert!(matches!(cli.command.unwrap(), Command::Compare { ref runs } if runs.len() == 3));
    }

    /// Clap wraps help text at the terminal's width, which mangles indented blocks (examples, the variables of
    /// `serve`); kept within 80 columns, they reach an 80-column terminal intact. Prose may be longer: it wraps.
    #[test]
    fn indented_help_lines_fit_80_columns() {
        fn visit(command: &clap::Command, long: &mut Vec<String>) {
            let texts = [command.get_after_help(), command.get_long_about(), command.get_after_long_help()];
            for text in texts.into_iter().flatten() {
                let text = text.to_string();
                long.extend(text.lines().filter(|l| l.starts_with(' ') && l.chars().count() > 80).map(str::to_owned));
            }
            command.get_subcommands().for_each(|sub| visit(sub, long));
        }
        let mut long = Vec::new();
        visit(&Cli::command(), &mut long);
        assert!(long.is_empty(), "lines over 80 columns: {long:#?}");
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        let mut missing = Vec::new();
        fn visit(command: &clap::Command, path: String, missing: &mut Vec<String>) {
            let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            if !help.contains("Examples:") {
                missing.push(path.clone());
            }
            for sub in command.get_subcommands() {
                visit(sub, format!("{path} {}", sub.get_name()), missing);
            }
        }
        visit(&Cli::command(), "athanor".into(), &mut missing);
        assert!(missing.is_empty(), "no Examples: block in {missing:?}");
    }
}
