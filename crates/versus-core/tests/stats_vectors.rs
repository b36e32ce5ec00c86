//! Paired-comparison statistics against their reference packages: `tests/vectors/stats.json`,
//! written by `tools/vectors/stats_vectors.py` with scipy, statsmodels and numpy (versions in
//! the file's `packages`).
//!
//! Tolerances:
//! - Deterministic statistics (McNemar, sign test, exact sign-flip test, Wilcoxon, Holm,
//!   pass@k, clustered standard errors, the power formulas) agree to `DETERMINISTIC` = 1e-9
//!   relative: the same formulas, summed in another order. The normal CDF and quantile are held
//!   to `NORMAL` = 1e-12 relative.
//! - Monte Carlo sign-flip p-values are compared with the exact p-value. Each one-sided count
//!   is binomial, so the estimate 2·(count + 1)/(draws + 1) has standard error
//!   2·√(q(1 − q)/draws) with q = p/2; we allow `MONTE_CARLO_SE` = 4.5 of those plus the
//!   2/(draws + 1) that the +1 adds (a 4.5-SE miss has probability below 1e-5 per case, and the
//!   draws are seeded, so a pass is reproducible). Against scipy's own randomized p-value the
//!   two standard errors are combined.
//! - Bootstrap intervals cannot share numpy's draws, so degenerate data must give the point
//!   exactly, the endpoints must lie within the Monte Carlo error of scipy's 99,999-resample
//!   interval, and intervals over simulated datasets must cover the true mean as often as
//!   scipy's do (see `covers_like_scipy`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use versus_core::significance::{
    bootstrap_mean_interval, clustered_standard_error, holm_adjust, mcnemar_exact, mean_difference,
    minimum_detectable_difference, normal_cdf, normal_quantile, pass_at_k, sign_counts,
    sign_flip_test, sign_test, tasks_needed, wilcoxon, wilcoxon_with, SignCounts, SignFlipMethod,
    WilcoxonMethod, DEFAULT_BOOTSTRAP_RESAMPLES, DEFAULT_SIGN_FLIP_DRAWS, EXACT_SIGN_FLIP_LIMIT,
};

const DETERMINISTIC: f64 = 1e-9;
const NORMAL: f64 = 1e-12;
const MONTE_CARLO_SE: f64 = 4.5;

#[derive(Deserialize)]
struct Vectors {
    packages: BTreeMap<String, String>,
    normal: Normal,
    mcnemar: Vec<McNemar>,
    sign: Vec<Sign>,
    sign_flip_exact: Vec<SignFlipExact>,
    sign_flip_monte_carlo: Vec<SignFlipMonteCarlo>,
    wilcoxon: Vec<WilcoxonCase>,
    bootstrap: Bootstrap,
    clustered: Vec<Clustered>,
    holm: Vec<Holm>,
    pass_at_k: Vec<PassAtK>,
    power: Power,
}

#[derive(Deserialize)]
struct Normal {
    cdf: Vec<(f64, f64)>,
    ppf: Vec<(f64, f64)>,
}

#[derive(Deserialize)]
struct McNemar {
    b: usize,
    c: usize,
    statsmodels: f64,
    scipy: Option<f64>,
}

#[derive(Deserialize)]
struct Sign {
    differences: Vec<f64>,
    wins: usize,
    losses: usize,
    ties: usize,
    p: f64,
}

#[derive(Deserialize)]
struct SignFlipExact {
    name: String,
    differences: Vec<f64>,
    mean: f64,
    reference: String,
    scipy: Option<f64>,
    p: f64,
}

#[derive(Deserialize)]
struct SignFlipMonteCarlo {
    name: String,
    differences: Vec<f64>,
    mean: f64,
    exact: f64,
    scipy_monte_carlo: f64,
    scipy_resamples: usize,
}

#[derive(Deserialize)]
struct ScipyWilcoxon {
    statistic: f64,
    p: f64,
}

#[derive(Deserialize)]
struct WilcoxonCase {
    name: String,
    differences: Vec<f64>,
    scipy: Option<ScipyWilcoxon>,
    scipy_approx: Option<ScipyWilcoxon>,
    scipy_exact: Option<ScipyWilcoxon>,
    auto_is_exact: bool,
}

#[derive(Deserialize)]
struct Bootstrap {
    degenerate: Vec<Degenerate>,
    datasets: Vec<BootstrapDataset>,
    coverage: Vec<CoverageDesign>,
}

#[derive(Deserialize)]
struct Degenerate {
    differences: Vec<f64>,
}

#[derive(Deserialize)]
struct BootstrapDataset {
    name: String,
    differences: Vec<f64>,
    scipy_low: f64,
    scipy_high: f64,
    scipy_resamples: usize,
    standard_error: f64,
    lattice_step: f64,
}

#[derive(Deserialize)]
struct CoverageDesign {
    name: String,
    distribution: String,
    mean: f64,
    sd: Option<f64>,
    values: Option<Vec<f64>>,
    probabilities: Option<Vec<f64>>,
    n: usize,
    scipy_datasets: usize,
    scipy_coverage: f64,
}

#[derive(Deserialize)]
struct Clustered {
    name: String,
    values: Vec<f64>,
    groups: Vec<String>,
    se: f64,
    numpy_std_over_sqrt_n: Option<f64>,
}

#[derive(Deserialize)]
struct Holm {
    p: Vec<f64>,
    adjusted: Vec<f64>,
}

#[derive(Deserialize)]
struct PassAtK {
    n: usize,
    c: usize,
    k: usize,
    pass_at_k: f64,
}

#[derive(Deserialize)]
struct Power {
    mde: Vec<Mde>,
    tasks_needed: Vec<TasksNeeded>,
}

#[derive(Deserialize)]
struct Mde {
    n: usize,
    sd: f64,
    alpha: f64,
    power: f64,
    mde: f64,
}

#[derive(Deserialize)]
struct TasksNeeded {
    difference: f64,
    sd: f64,
    alpha: f64,
    power: f64,
    tasks: usize,
}

fn vectors() -> &'static Vectors {
    static VECTORS: OnceLock<Vectors> = OnceLock::new();
    VECTORS.get_or_init(|| {
        serde_json::from_str(include_str!("vectors/stats.json")).expect("stats.json parses")
    })
}

/// `actual` is within `relative` of `expected`, or both are below the smallest normal `f64`.
fn close(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= relative * expected.abs()
        || (actual.abs() < f64::MIN_POSITIVE && expected.abs() < f64::MIN_POSITIVE)
}

/// `close`, or within `absolute` (for values that are zero in exact arithmetic).
fn near(actual: f64, expected: f64, relative: f64, absolute: f64) -> bool {
    close(actual, expected, relative) || (actual - expected).abs() <= absolute
}

#[test]
fn vectors_name_their_packages() {
    let packages = &vectors().packages;
    for package in ["numpy", "scipy", "statsmodels"] {
        assert!(packages.contains_key(package), "{package} missing");
    }
}

#[test]
fn normal_cdf_matches_scipy() {
    let cases = &vectors().normal.cdf;
    assert!(cases.len() > 200);
    let mut worst = 0.0f64;
    for &(x, expected) in cases {
        let actual = normal_cdf(x);
        assert!(
            close(actual, expected, NORMAL),
            "cdf({x}) = {actual}, scipy {expected}"
        );
        if expected > 0.0 {
            worst = worst.max((actual - expected).abs() / expected);
        }
    }
    eprintln!("normal cdf: worst relative difference {worst:.2e}");
}

#[test]
fn normal_quantile_matches_scipy() {
    let cases = &vectors().normal.ppf;
    assert!(cases.len() > 80);
    let mut worst = 0.0f64;
    for &(p, expected) in cases {
        let actual = normal_quantile(p).expect("p in (0, 1)");
        assert!(
            near(actual, expected, NORMAL, 1e-15),
            "ppf({p}) = {actual}, scipy {expected}"
        );
        if expected != 0.0 {
            worst = worst.max((actual - expected).abs() / expected.abs());
        }
    }
    eprintln!("normal ppf: worst relative difference {worst:.2e}");
}

#[test]
fn mcnemar_matches_statsmodels_and_scipy() {
    let cases = &vectors().mcnemar;
    assert!(cases.len() > 600);
    for case in cases {
        let p = mcnemar_exact(case.b, case.c);
        let context = format!("b={} c={}", case.b, case.c);
        assert!(
            close(p, case.statsmodels, DETERMINISTIC),
            "{context}: {p} vs statsmodels {}",
            case.statsmodels
        );
        match case.scipy {
            Some(scipy) => assert!(close(p, scipy, DETERMINISTIC), "{context}: scipy {scipy}"),
            None => assert_eq!(case.b + case.c, 0, "{context}"),
        }
        assert_eq!(p, mcnemar_exact(case.c, case.b), "{context}: symmetric");
    }
}

#[test]
fn sign_test_matches_scipy() {
    for case in &vectors().sign {
        let counts = sign_counts(&case.differences).expect("finite");
        assert_eq!(
            counts,
            SignCounts {
                wins: case.wins,
                losses: case.losses,
                ties: case.ties
            }
        );
        let p = sign_test(counts.wins, counts.losses);
        assert!(close(p, case.p, DETERMINISTIC), "{p} vs {}", case.p);
    }
}

#[test]
fn exact_sign_flip_matches_scipy() {
    let cases = &vectors().sign_flip_exact;
    assert!(cases.len() >= 20);
    for case in cases {
        let test = sign_flip_test(&case.differences, 1).expect("finite differences");
        let nonzero = case.differences.iter().filter(|&&d| d != 0.0).count();
        assert!(nonzero <= EXACT_SIGN_FLIP_LIMIT, "{}", case.name);
        assert_eq!(
            test.method,
            SignFlipMethod::Exact {
                patterns: 1 << nonzero
            },
            "{}",
            case.name
        );
        assert!(
            close(test.p_value, case.p, DETERMINISTIC),
            "{}: {} vs {} ({})",
            case.name,
            test.p_value,
            case.p,
            case.reference
        );
        if let Some(scipy) = case.scipy {
            assert!(
                close(test.p_value, scipy, DETERMINISTIC),
                "{}: {} vs scipy {scipy}",
                case.name,
                test.p_value
            );
        }
        assert!(
            near(test.mean_difference, case.mean, 1e-12, 1e-15),
            "{}: mean {} vs {}",
            case.name,
            test.mean_difference,
            case.mean
        );
        assert_eq!(
            mean_difference(&case.differences),
            Some(test.mean_difference)
        );
    }
}

/// Standard error of the two-sided estimate 2·count/draws when the exact p-value is `p`.
fn monte_carlo_se(p: f64, draws: usize) -> f64 {
    let q = (p / 2.0).min(0.5);
    2.0 * (q * (1.0 - q) / draws as f64).sqrt()
}

#[test]
fn monte_carlo_sign_flip_is_within_its_error() {
    let cases = &vectors().sign_flip_monte_carlo;
    assert!(cases.len() >= 8);
    let draws = DEFAULT_SIGN_FLIP_DRAWS;
    for case in cases {
        let test = sign_flip_test(&case.differences, 20_240_611).expect("finite differences");
        assert_eq!(
            test.method,
            SignFlipMethod::MonteCarlo { draws },
            "{}",
            case.name
        );
        let bias = 2.0 / (draws + 1) as f64;
        let se = monte_carlo_se(case.exact, draws);
        let error = (test.p_value - case.exact).abs();
        eprintln!(
            "{}: {:.5} vs exact {:.5} ({:.1} SE)",
            case.name,
            test.p_value,
            case.exact,
            error / se.max(f64::MIN_POSITIVE)
        );
        assert!(
            error <= MONTE_CARLO_SE * se + bias,
            "{}: {} vs exact {} (SE {se})",
            case.name,
            test.p_value,
            case.exact
        );
        let scipy_se = monte_carlo_se(case.exact, case.scipy_resamples);
        let scipy_bias = 2.0 / (case.scipy_resamples + 1) as f64;
        assert!(
            (test.p_value - case.scipy_monte_carlo).abs()
                <= MONTE_CARLO_SE * se.hypot(scipy_se) + bias + scipy_bias,
            "{}: {} vs scipy's Monte Carlo {}",
            case.name,
            test.p_value,
            case.scipy_monte_carlo
        );
        assert!(near(test.mean_difference, case.mean, 1e-12, 1e-15));
        assert!(test.p_value > 0.0);
    }
}

fn check_wilcoxon(
    name: &str,
    differences: &[f64],
    method: WilcoxonMethod,
    expected: &ScipyWilcoxon,
) -> WilcoxonMethod {
    let ours = wilcoxon_with(differences, method).expect("finite differences");
    assert!(
        close(ours.p_value, expected.p, DETERMINISTIC),
        "{name} {method:?}: p {} vs scipy {}",
        ours.p_value,
        expected.p
    );
    assert!(
        close(ours.statistic, expected.statistic, 1e-12),
        "{name} {method:?}: statistic {} vs scipy {}",
        ours.statistic,
        expected.statistic
    );
    ours.method
}

#[test]
fn wilcoxon_matches_scipy() {
    let cases = &vectors().wilcoxon;
    assert!(cases.len() >= 20);
    for case in cases {
        let name = &case.name;
        match &case.scipy {
            Some(scipy) => {
                let method = check_wilcoxon(name, &case.differences, WilcoxonMethod::Auto, scipy);
                let expected = if case.auto_is_exact {
                    WilcoxonMethod::Exact
                } else {
                    WilcoxonMethod::Approx
                };
                assert_eq!(method, expected, "{name}");
            }
            None => {
                // scipy raises for all-zero differences; we answer p = 1.
                let ours = wilcoxon(&case.differences).expect("finite differences");
                assert_eq!(ours.p_value, 1.0, "{name}");
                assert_eq!(ours.ranked, 0, "{name}");
            }
        }
        if let Some(approx) = &case.scipy_approx {
            let method = check_wilcoxon(name, &case.differences, WilcoxonMethod::Approx, approx);
            assert_eq!(method, WilcoxonMethod::Approx);
        }
        if let Some(exact) = &case.scipy_exact {
            let method = check_wilcoxon(name, &case.differences, WilcoxonMethod::Exact, exact);
            assert_eq!(method, WilcoxonMethod::Exact);
        }
    }
}

#[test]
fn bootstrap_of_degenerate_data_is_the_point() {
    for case in &vectors().bootstrap.degenerate {
        let point = case.differences[0];
        assert_eq!(
            bootstrap_mean_interval(&case.differences, DEFAULT_BOOTSTRAP_RESAMPLES, 5),
            Some((point, point))
        );
    }
}

/// Monte Carlo standard deviation of a bootstrap's 2.5% (or 97.5%) quantile over `resamples`
/// draws, for a bootstrap distribution close to normal with standard deviation `se`:
/// √(q(1 − q)/B) / f(x_q) with f(x_q) = φ(1.96)/se.
fn quantile_sd(se: f64, resamples: usize) -> f64 {
    let q: f64 = 0.025;
    let density =
        (-0.5 * 1.959_963_984_540_054f64.powi(2)).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (q * (1.0 - q) / resamples as f64).sqrt() / density * se
}

#[test]
fn bootstrap_interval_is_within_the_error_of_scipys() {
    for case in &vectors().bootstrap.datasets {
        let (low, high) =
            bootstrap_mean_interval(&case.differences, DEFAULT_BOOTSTRAP_RESAMPLES, 31)
                .expect("finite differences");
        let sd = quantile_sd(case.standard_error, DEFAULT_BOOTSTRAP_RESAMPLES)
            .hypot(quantile_sd(case.standard_error, case.scipy_resamples));
        // 5 SD, and one step of the lattice the mean lives on for discrete data.
        let tolerance = 5.0 * sd + case.lattice_step;
        eprintln!(
            "{}: ({low:.4}, {high:.4}) vs scipy ({:.4}, {:.4}), tolerance {tolerance:.4}",
            case.name, case.scipy_low, case.scipy_high
        );
        assert!(
            (low - case.scipy_low).abs() <= tolerance,
            "{} low",
            case.name
        );
        assert!(
            (high - case.scipy_high).abs() <= tolerance,
            "{} high",
            case.name
        );
    }
}

/// SplitMix64, for simulated datasets (the library's own generator is private).
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn simulate(design: &CoverageDesign, random: &mut SplitMix) -> Vec<f64> {
    (0..design.n)
        .map(|_| match design.distribution.as_str() {
            "normal" => design.mean + design.sd.expect("sd") * random.normal(),
            _ => {
                let values = design.values.as_ref().expect("values");
                let probabilities = design.probabilities.as_ref().expect("probabilities");
                let mut u = random.uniform();
                let mut chosen = values[values.len() - 1];
                for (&value, &probability) in values.iter().zip(probabilities) {
                    if u < probability {
                        chosen = value;
                        break;
                    }
                    u -= probability;
                }
                chosen
            }
        })
        .collect()
}

/// Datasets and resamples per coverage design here: the share of datasets covered has binomial
/// standard error √(c(1 − c)/DATASETS) ≈ 0.007, and 1,000 resamples place the 2.5% and 97.5%
/// quantiles well enough that coverage moves by less than that (scipy's reference uses 9,999).
const COVERAGE_DATASETS: usize = 1_000;
const COVERAGE_RESAMPLES: usize = 1_000;

/// Over simulated datasets from a known distribution, our intervals cover the true mean as often
/// as scipy's percentile intervals do (within 4 combined binomial standard errors), and that
/// share is near 95% (91-98%).
///
/// The percentile bootstrap under-covers at small n: for normal data and n = 30 it behaves like
/// mean ± 1.96·σ̂/√n with the n-denominator σ̂, whose coverage is about 93.5%, and scipy measures
/// 93.0% ± 0.4% on this design. A fixed 93-97% band would fail about half of all seeds for a
/// correct implementation, hence the comparison with scipy's measured coverage. Pass/fail
/// differences cover more than 95%: the true mean lies on the lattice of possible means, and the
/// interval's ends are inclusive.
fn covers_like_scipy(name: &str, seed: u64) {
    let design = vectors()
        .bootstrap
        .coverage
        .iter()
        .find(|design| design.name == name)
        .unwrap_or_else(|| panic!("no coverage design {name}"));
    let mut random = SplitMix(seed);
    let mut covered = 0usize;
    for dataset in 0..COVERAGE_DATASETS {
        let differences = simulate(design, &mut random);
        let (low, high) = bootstrap_mean_interval(&differences, COVERAGE_RESAMPLES, dataset as u64)
            .expect("finite differences");
        if low <= design.mean && design.mean <= high {
            covered += 1;
        }
    }
    let ours = covered as f64 / COVERAGE_DATASETS as f64;
    let c = design.scipy_coverage;
    let se = (c * (1.0 - c) / COVERAGE_DATASETS as f64)
        .sqrt()
        .hypot((c * (1.0 - c) / design.scipy_datasets as f64).sqrt());
    eprintln!("{name}: covered {ours:.3} vs scipy {c:.3} (SE {se:.4})");
    assert!((ours - c).abs() <= 4.0 * se, "{name}: {ours} vs scipy {c}");
    assert!((0.91..=0.98).contains(&ours), "{name}: {ours}");
}

#[test]
fn bootstrap_covers_like_scipy_normal_n30() {
    covers_like_scipy("normal_n30", 0x00C0_FFEE);
}

#[test]
fn bootstrap_covers_like_scipy_outcomes_n50() {
    covers_like_scipy("outcomes_n50", 0x00C0_FFEF);
}

#[test]
fn clustered_standard_error_matches_numpy() {
    for case in &vectors().clustered {
        let se = clustered_standard_error(&case.values, &case.groups).expect("valid input");
        assert!(
            near(se, case.se, DETERMINISTIC, 1e-15),
            "{}: {se} vs {}",
            case.name,
            case.se
        );
        if let Some(plain) = case.numpy_std_over_sqrt_n {
            assert!(
                near(se, plain, 1e-12, 1e-15),
                "{}: {se} vs numpy std/sqrt(n) {plain}",
                case.name
            );
        }
    }
}

#[test]
fn holm_matches_statsmodels() {
    for case in &vectors().holm {
        let adjusted = holm_adjust(&case.p).expect("valid p-values");
        assert_eq!(adjusted.len(), case.adjusted.len());
        for (ours, expected) in adjusted.iter().zip(&case.adjusted) {
            assert!(
                near(*ours, *expected, 1e-12, 1e-15),
                "{:?}: {adjusted:?} vs {:?}",
                case.p,
                case.adjusted
            );
        }
    }
}

#[test]
fn pass_at_k_matches_humaneval() {
    let cases = &vectors().pass_at_k;
    assert!(cases.len() > 50);
    for case in cases {
        let ours = pass_at_k(case.n, case.c, case.k).expect("valid counts");
        assert!(
            near(ours, case.pass_at_k, 1e-12, 1e-15),
            "n={} c={} k={}: {ours} vs {}",
            case.n,
            case.c,
            case.k,
            case.pass_at_k
        );
    }
}

#[test]
fn power_formulas_match_scipy() {
    let power = &vectors().power;
    for case in &power.mde {
        let ours = minimum_detectable_difference(case.n, case.sd, case.alpha, case.power)
            .expect("valid input");
        assert!(
            near(ours, case.mde, 1e-12, 0.0),
            "n={} sd={}: {ours} vs {}",
            case.n,
            case.sd,
            case.mde
        );
    }
    for case in &power.tasks_needed {
        assert_eq!(
            tasks_needed(case.difference, case.sd, case.alpha, case.power),
            Some(case.tasks),
            "difference {} sd {}",
            case.difference,
            case.sd
        );
    }
}
