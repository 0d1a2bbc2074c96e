//! The small numerical kit the simulated experiments share.
//!
//! Nothing here is part of Athanor's API: a real experiment measures its numbers instead of inventing them. It is
//! kept apart so the experiment modules read as examples of the API rather than of the arithmetic.

use rand::Rng;

/// The accuracy a simulated model levels off at. The figures echo Athanor's design document, so the demo
/// instances tell the story it tells (Claude ahead, then GPT-4, then Llama).
pub(crate) fn accuracy_ceiling(model: &str) -> f64 {
    match model {
        "claude-3" => 0.91,
        "gpt-4" => 0.87,
        "llama-3" => 0.84,
        // The schemas only offer the three above; a model added to a schema later still gets a plausible curve.
        _ => 0.80,
    }
}

/// Two independent draws from the standard normal distribution (Box–Muller).
///
/// Always consumes exactly two uniform numbers, so a caller that draws once per step replays the same sequence
/// for the same seed whatever the configuration does with the values.
pub(crate) fn standard_normal_pair(rng: &mut impl Rng) -> (f64, f64) {
    // `random::<f64>()` is in [0, 1); flipping it to (0, 1] keeps `ln` finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let radius = (-2.0 * u1.ln()).sqrt();
    let angle = std::f64::consts::TAU * u2;
    (radius * angle.cos(), radius * angle.sin())
}

/// Rounded to 4 decimals: metrics read better in the dashboard and stored JSON stays small; the values remain
/// exactly reproducible because the rounding is deterministic.
pub(crate) fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn normal_draws_look_standard() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<f64> = (0..5_000)
            .flat_map(|_| {
                let (a, b) = standard_normal_pair(&mut rng);
                [a, b]
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.05, "variance {variance}");
        assert!(draws.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn round4_keeps_four_decimals() {
        assert_eq!(round4(0.123_456), 0.1235);
        assert_eq!(round4(-2.0), -2.0);
    }
}
