//! `model_pairs` — structured configuration: a list of groups, and a group of settings.
//!
//! The schema has a **list** field, `model_pairs`, whose items are small groups `{a, b, runs}`, and a **group**,
//! `api`, holding `timeout` and `retries`. The dashboard renders the list as rows the user can add and remove, and
//! the group as a titled section. In `run` they are plain Rust: [`Config`] mirrors the nesting, with a
//! `Vec<`[`Pair`]`>` for the list and an [`Api`] struct for the group, so the code reads `config.api.timeout` and
//! iterates `config.model_pairs`. Each item arrives completed with its defaults (a row saved without `runs` has
//! the schema's default), and a group is always present, its own fields filled in the same way.
//!
//! For each pair and each trial the run simulates both models' accuracy on a 100-question benchmark and logs
//! `trial 2/3: gpt-4 0.87 vs claude-3 0.91`. It then records, per pair,
//! `pairs/{index}/{a}_vs_{b}` = `{"a": mean accuracy of a, "b": mean accuracy of b, "wins_a", "wins_b", "ties",
//! "trials"}` — the index counts from 0 like the form's `model_pairs[0]`, and keeps two rows comparing the same
//! models apart — and, per model, `win_rate/{model}`: trials won over trials played, across all pairs.
//!
//! The scores are a deterministic function of the two names and the trial number (through a stable hash), so a
//! configuration always reproduces its results without needing a seed field. The `api` settings are only logged:
//! no request is made.

use crate::sim;
use athanor_runtime::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Compares pairs of models; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelPairs;

register_experiment!(ModelPairs);

/// Simulated time one trial takes, so progress visibly moves.
const TRIAL_TIME: Duration = Duration::from_millis(50);
/// Questions in the simulated benchmark: accuracies are multiples of 1/100, so equal scores are real ties.
const QUESTIONS: f64 = 100.0;
/// Spread of a model's score from trial to trial.
const TRIAL_SIGMA: f64 = 0.03;

const MODELS: [&str; 3] = ["gpt-4", "claude-3", "llama-3"];

/// The configuration of a run: a list field becomes a `Vec` of item structs, a group a nested struct.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The pairs to compare, in the form's order.
    pub model_pairs: Vec<Pair>,
    /// API settings (only logged: no request is made).
    pub api: Api,
}

/// One row of the `model_pairs` list.
#[derive(Debug, Clone, Deserialize)]
pub struct Pair {
    /// The first model.
    pub a: String,
    /// The second model.
    pub b: String,
    /// Trials to run.
    pub runs: u64,
}

/// The `api` group.
#[derive(Debug, Clone, Deserialize)]
pub struct Api {
    /// Seconds before a (simulated) request gives up.
    pub timeout: u64,
    /// Retries of a failed (simulated) request.
    pub retries: u64,
}

/// Wins and trials of one model across all pairs.
#[derive(Default)]
struct Tally {
    wins: u64,
    trials: u64,
}

impl Experiment for ModelPairs {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("model_pairs", env!("CARGO_PKG_VERSION"))
            .description(
                "Compares pairs of models over N trials each; shows groups and lists in the configuration form.",
            )
            .schema(
                Schema::new()
                    .field(
                        Field::list(
                            "model_pairs",
                            vec![
                                Field::string("a").label("Model A").options(MODELS).required(),
                                Field::string("b").label("Model B").options(MODELS).required(),
                                Field::integer("runs").label("Trials").default(3).min(1).max(100),
                            ],
                        )
                        .label("Model pairs")
                        .min_items(1)
                        .default_items(json!([{"a": "gpt-4", "b": "claude-3", "runs": 3}])),
                    )
                    .field(
                        Field::group(
                            "api",
                            vec![
                                Field::integer("timeout").label("Timeout (s)").default(30).min(1).max(600),
                                Field::integer("retries").label("Retries").default(2).min(0).max(10),
                            ],
                        )
                        .label("API"),
                    ),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        let Config { model_pairs: pairs, api: Api { timeout, retries } } = config;

        let total_trials: u64 = pairs.iter().map(|pair| pair.runs).sum();
        ctx.debug(format!("API timeout {timeout} s with {retries} retries (simulated: no request is made)")).await;
        ctx.info(format!("comparing {} pairs over {total_trials} trials", pairs.len())).await;

        let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
        let mut done = 0;
        for (index, pair) in pairs.iter().enumerate() {
            let (mut sum_a, mut sum_b, mut wins_a, mut wins_b, mut ties) = (0.0, 0.0, 0_u64, 0_u64, 0_u64);
            for trial in 1..=pair.runs {
                // The trial's simulated API call, abandoned at once on cancel.
                tokio::select! {
                    biased;
                    () = ctx.cancelled() => {
                        ctx.info(format!("cancelled during {} vs {}, trial {trial}", pair.a, pair.b)).await;
                        return Ok(());
                    }
                    () = tokio::time::sleep(TRIAL_TIME) => {}
                }
                let (score_a, score_b) = simulate(&pair.a, &pair.b, trial);
                ctx.info(format!("trial {trial}/{}: {} {score_a:.2} vs {} {score_b:.2}", pair.runs, pair.a, pair.b))
                    .await;
                sum_a += score_a;
                sum_b += score_b;
                match score_a.partial_cmp(&score_b) {
                    Some(std::cmp::Ordering::Greater) => wins_a += 1,
                    Some(std::cmp::Ordering::Less) => wins_b += 1,
                    _ => ties += 1,
                }
                done += 1;
                ctx.progress(done, Some(total_trials), Some(&format!("{} vs {}: trial {trial}", pair.a, pair.b)));
            }

            let trials = pair.runs.max(1) as f64;
            ctx.result(
                format!("pairs/{index}/{}_vs_{}", pair.a, pair.b),
                json!({
                    "a": sim::round4(sum_a / trials),
                    "b": sim::round4(sum_b / trials),
                    "wins_a": wins_a,
                    "wins_b": wins_b,
                    "ties": ties,
                    "trials": pair.runs,
                }),
            )
            .await?;
            for (model, wins) in [(pair.a.as_str(), wins_a), (pair.b.as_str(), wins_b)] {
                let tally = tallies.entry(model).or_default();
                tally.wins += wins;
                tally.trials += pair.runs;
            }
        }

        for (model, tally) in &tallies {
            let rate = if tally.trials == 0 { 0.0 } else { tally.wins as f64 / tally.trials as f64 };
            ctx.result(format!("win_rate/{model}"), sim::round4(rate)).await?;
        }
        Ok(())
    }
}

/// Both models' scores in one trial: the model's accuracy ceiling plus noise, as a fraction of 100 questions.
///
/// Seeded from a hash of the pair and the trial, so the same pair and trial always score the same.
fn simulate(a: &str, b: &str, trial: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(stable_hash(&[a.as_bytes(), b.as_bytes(), &trial.to_le_bytes()]));
    let (z_a, z_b) = sim::standard_normal_pair(&mut rng);
    let score = |model: &str, z: f64| {
        ((sim::accuracy_ceiling(model) + TRIAL_SIGMA * z).clamp(0.0, 1.0) * QUESTIONS).round() / QUESTIONS
    };
    (score(a, z_a), score(b, z_b))
}

/// FNV-1a over the parts, with a separator so `("ab", "c")` and `("a", "bc")` differ.
///
/// Not `std`'s `DefaultHasher`: its algorithm may change between Rust releases, and these scores must not.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for &byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_deterministic_and_on_the_benchmark_grid() {
        assert_eq!(simulate("gpt-4", "claude-3", 2), simulate("gpt-4", "claude-3", 2));
        assert_ne!(simulate("gpt-4", "claude-3", 1), simulate("gpt-4", "claude-3", 2));
        let (a, b) = simulate("llama-3", "gpt-4", 1);
        for score in [a, b] {
            assert!((0.0..=1.0).contains(&score));
            assert_eq!((score * 100.0).round() / 100.0, score);
        }
    }

    #[test]
    fn hash_separates_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
    }
}
