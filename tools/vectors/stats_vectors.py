#!/usr/bin/env python3
# Run from the repository root (writes crates/versus-core/tests/vectors/stats.json, ~4 min):
# python3 -m venv /tmp/st && /tmp/st/bin/pip install numpy==1.26.4 scipy==1.14.1 statsmodels==0.14.4 pandas==2.2.3 patsy==1.0.1 && /tmp/st/bin/python tools/vectors/stats_vectors.py
"""Reference vectors for versus-core's significance module (crates/versus-core/src/significance/).

Every input is generated here from seeded numpy generators, so the output is reproducible with
the pinned versions. Sections of the JSON, and what each reference is:

- `normal`: `scipy.stats.norm.cdf` and `norm.ppf` on grids reaching far into both tails.
- `mcnemar`: statsmodels `mcnemar([[a, b], [c, d]], exact=True).pvalue` and scipy
  `binomtest(min(b, c), b + c, 0.5).pvalue` (absent for b + c = 0, where scipy refuses); the two
  are checked to agree here, the doubled tail against scipy's "no more likely" two-sided sum.
- `sign`: per-task differences, their win/loss/tie counts, and `binomtest(wins, wins + losses)`.
- `sign_flip_exact`: `scipy.stats.permutation_test((d,), mean, permutation_type='samples',
  n_resamples=np.inf)`, the exact test, for at most 20 non-zero differences. Where scipy cannot
  be asked (one difference) or its floating-point tie rule is not the exact-arithmetic answer
  (non-dyadic decimals whose sums tie only in exact arithmetic), `exact_rational` is the same
  definition enumerated with Python fractions, and the tests use it; `scipy` is kept to show
  the difference. With zero differences and more than 20 values, scipy is run on the non-zero
  ones (the same p-value: flipping a zero changes nothing; checked here on a small case).
- `sign_flip_monte_carlo`: more than 20 non-zero differences, where versus draws. `exact` is
  the exact p-value: for integer differences by convolving the null distribution of the sum
  (Python integers, so exact), checked against scipy's exact test on a small case; for two
  continuous cases (21 and 22 values) scipy's exact enumeration. `scipy_monte_carlo` is scipy's
  own randomized p-value (`n_resamples`, seeded), for comparison within both Monte Carlo errors.
- `wilcoxon`: `scipy.stats.wilcoxon(d)` with its defaults (zero_method='wilcox',
  correction=False, method='auto'), plus method='approx' and, without zeros, method='exact'.
  All-zero differences make scipy raise; that case has `scipy: null` and the tests expect p = 1.
- `bootstrap`: degenerate cases (the interval is the point), three datasets with scipy's
  percentile interval from 99,999 resamples and the data's standard error (for the Monte Carlo
  tolerance), and `coverage`: the share of simulated datasets whose scipy percentile interval
  (9,999 resamples) covers the true mean, for the designs the Rust tests simulate.
- `clustered`: the clustered standard error as written in Miller (2024) appendix A,
  sqrt(sum_c (sum_{i in c} (x_i - mean))^2) / n, in numpy, and for singleton clusters also
  `np.std(x) / sqrt(n)` (ddof=0), which it must equal.
- `holm`: statsmodels `multipletests(p, method='holm')[1]`.
- `pass_at_k`: HumanEval's `estimate_pass_at_k` (numpy, re-typed below).
- `power`: the minimum detectable difference (z_{1-alpha/2} + z_power) * sd / sqrt(n) with
  `norm.ppf`, and the tasks needed: the smallest n whose detectable difference is at most d.
"""

import json
import math
import os
import warnings
from fractions import Fraction
from itertools import product

import numpy as np
import pandas as pd
import patsy
import scipy
import scipy.stats as st
import statsmodels
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

OUTPUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "crates",
    "versus-core",
    "tests",
    "vectors",
    "stats.json",
)


def mean_statistic(d, axis):
    return np.mean(d, axis=axis)


def floats(values):
    return [float(v) for v in values]


# --------------------------------------------------------------------------------------------
# Normal distribution
# --------------------------------------------------------------------------------------------


def normal_section():
    xs = sorted(
        set(
            [round(x, 6) for x in np.linspace(-37.0, 8.0, 181)]
            + [-1e-8, 0.0, 1e-8, 0.5, 1.0, 1.5, 1.96, 1.999, 2.0, 2.001, -1.96, -2.0, -2.001]
            + [float(x) for x in np.random.default_rng(1).normal(0.0, 3.0, 40)]
        )
    )
    cdf = [[x, float(st.norm.cdf(x))] for x in xs]
    ps = sorted(
        set(
            [10.0**e for e in range(-300, 0, 7)]
            + [1e-300, 1e-100, 1e-20, 1e-10, 1e-5, 0.001, 0.01, 0.02425, 0.025, 0.05, 0.1]
            + [0.2, 0.3, 0.4, 0.45, 0.49, 0.4999, 0.5, 0.5001, 0.51, 0.6, 0.7, 0.8, 0.9]
            + [0.95, 0.975, 0.97575, 0.99, 0.999, 1 - 1e-5, 1 - 1e-10, 1 - 1e-15]
            + [float(p) for p in np.random.default_rng(2).uniform(0.0, 1.0, 40)]
        )
    )
    ppf = [[p, float(st.norm.ppf(p))] for p in ps]
    return {"cdf": cdf, "ppf": ppf}


# --------------------------------------------------------------------------------------------
# McNemar and the sign test
# --------------------------------------------------------------------------------------------


def mcnemar_section():
    pairs = [(b, c) for b in range(0, 26) for c in range(0, 26)]
    pairs += [
        (100, 130), (130, 100), (500, 560), (1000, 1100), (0, 50), (3, 2000),
        (40, 60), (5000, 5200), (20000, 20400), (0, 1000), (250, 251), (1, 1074),
    ]
    rows = []
    for b, c in pairs:
        table = [[7, b], [c, 11]]
        sm = float(mcnemar(table, exact=True).pvalue)
        row = {"b": b, "c": c, "statsmodels": sm, "scipy": None}
        if b + c > 0:
            sp = float(st.binomtest(min(b, c), b + c, 0.5).pvalue)
            row["scipy"] = sp
            assert abs(sp - sm) <= 1e-12 * max(sm, 1e-300), (b, c, sp, sm)
        rows.append(row)
    return rows


def sign_section():
    rng = np.random.default_rng(3)
    cases = []
    for n in [1, 2, 5, 10, 30, 100, 400]:
        d = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.25, 0.35, 0.4])
        d = d * rng.choice([0.5, 1.0, 2.0], size=n)
        wins, losses, ties = int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum())
        p = 1.0 if wins + losses == 0 else float(st.binomtest(wins, wins + losses).pvalue)
        cases.append(
            {"differences": floats(d), "wins": wins, "losses": losses, "ties": ties, "p": p}
        )
    cases.append({"differences": [0.0, 0.0], "wins": 0, "losses": 0, "ties": 2, "p": 1.0})
    return cases


# --------------------------------------------------------------------------------------------
# Sign-flip permutation test
# --------------------------------------------------------------------------------------------


def scipy_exact(d):
    d = np.asarray(d, dtype=float)
    return float(
        st.permutation_test(
            (d,),
            mean_statistic,
            permutation_type="samples",
            vectorized=True,
            n_resamples=np.inf,
            alternative="two-sided",
            batch=2**15,
        ).pvalue
    )


def rational_exact(d):
    """2 * min(P(S <= s), P(S >= s)) over all sign patterns, in exact arithmetic, capped at 1."""
    # Each value as the shortest decimal that reads back as it (0.1 as 1/10), so sums of decimal
    # scores that are equal on paper are equal here.
    values = [Fraction(repr(float(v))) for v in d if v != 0]
    observed = sum(values)
    at_most = at_least = 0
    for signs in product((1, -1), repeat=len(values)):
        s = sum(sign * v for sign, v in zip(signs, values))
        at_most += s <= observed
        at_least += s >= observed
    total = 2 ** len(values)
    return float(min(Fraction(1), 2 * Fraction(min(at_most, at_least), total)))


def sign_flip_exact_section():
    rng = np.random.default_rng(4)
    cases = []

    def add(name, d, reference="scipy"):
        d = floats(d)
        case = {"name": name, "differences": d, "mean": float(np.mean(d)), "reference": reference}
        nonzero = [v for v in d if v != 0]
        if len(d) >= 2:
            case["scipy"] = scipy_exact(d if len(d) <= 20 else nonzero)
        if reference == "exact_rational":
            case["exact_rational"] = rational_exact(d)
        case["p"] = case[reference]
        cases.append(case)

    for n in [2, 3, 4, 5, 7, 10, 13, 16, 20]:
        add(f"normal_{n}", rng.normal(0.3, 1.0, n))
    for n in [6, 12, 20]:
        add(f"quarters_with_ties_{n}", np.round(rng.normal(0.2, 1.0, n) * 4) / 4)
    for n in [8, 15, 20]:
        add(f"outcomes_{n}", rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.2, 0.4, 0.4]))
    add("all_positive_10", np.arange(1, 11, dtype=float))
    add("all_zero_5", np.zeros(5))
    add("one_zero_in_three", [0.0, 1.0, -2.0])
    add("single", [0.7], reference="exact_rational")
    # 26 tasks, 8 of them ties: exact over the 18 non-zero differences.
    d = rng.normal(0.4, 1.0, 26)
    d[rng.choice(26, size=8, replace=False)] = 0.0
    add("zeros_26_of_which_8", d)
    # Decimal scores whose sums tie only in exact arithmetic.
    add(
        "tenths",
        [0.1, 0.2, -0.3, 0.1, 0.1, 0.3, -0.2, 0.4, 0.1, -0.1, 0.2, 0.3],
        reference="exact_rational",
    )
    add("tenths_small", [0.1, 0.2, -0.3, 0.1, 0.1], reference="exact_rational")
    # Zeros do not change scipy's exact p-value.
    small = [0.5, -1.25, 2.0, 0.75, 0.0, 0.0, 1.5]
    assert scipy_exact(small) == scipy_exact([v for v in small if v != 0])
    return cases


def integer_exact(d):
    """Exact two-sided sign-flip p-value for integer differences, by convolution."""
    magnitudes = [abs(int(v)) for v in d if v != 0]
    observed = int(sum(int(v) for v in d))
    counts = {0: 1}
    for m in magnitudes:
        nxt = {}
        for s, c in counts.items():
            nxt[s + m] = nxt.get(s + m, 0) + c
            nxt[s - m] = nxt.get(s - m, 0) + c
        counts = nxt
    total = 2 ** len(magnitudes)
    at_most = sum(c for s, c in counts.items() if s <= observed)
    at_least = sum(c for s, c in counts.items() if s >= observed)
    return float(min(Fraction(1), 2 * Fraction(min(at_most, at_least), total)))


def scipy_monte_carlo(d, resamples, seed):
    return float(
        st.permutation_test(
            (np.asarray(d, dtype=float),),
            mean_statistic,
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            alternative="two-sided",
            random_state=np.random.default_rng(seed),
        ).pvalue
    )


def sign_flip_monte_carlo_section():
    rng = np.random.default_rng(5)
    check = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=12)
    assert abs(integer_exact(check) - scipy_exact(check)) < 1e-12
    resamples = 99_999
    cases = []

    def add(name, d, exact, seed):
        d = floats(d)
        cases.append(
            {
                "name": name,
                "differences": d,
                "mean": float(np.mean(d)),
                "exact": exact,
                "scipy_monte_carlo": scipy_monte_carlo(d, resamples, seed),
                "scipy_resamples": resamples,
            }
        )

    designs = [
        ("outcomes_30", 30, [0.25, 0.35, 0.4]),
        ("outcomes_50", 50, [0.2, 0.4, 0.4]),
        ("outcomes_200", 200, [0.22, 0.4, 0.38]),
        ("outcomes_1000", 1000, [0.27, 0.4, 0.33]),
        ("outcomes_1000_null", 1000, [0.3, 0.4, 0.3]),
    ]
    for seed, (name, n, p) in enumerate(designs):
        d = rng.choice([-1.0, 0.0, 1.0], size=n, p=p)
        add(name, d, integer_exact(d), 100 + seed)
    d = rng.choice([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], size=60)
    d = d + (rng.random(60) < 0.25)  # a small shift, still integers
    add("integers_60", d, integer_exact(d), 110)
    d = np.zeros(40)
    d[:21] = 1.0
    add("twenty_one_wins_of_40", d, integer_exact(d), 111)
    for n in [21, 22]:
        d = rng.normal(0.35, 1.0, n)
        add(f"normal_{n}", d, scipy_exact(d), 120 + n)
    return cases


# --------------------------------------------------------------------------------------------
# Wilcoxon signed-rank
# --------------------------------------------------------------------------------------------


def wilcoxon_section():
    rng = np.random.default_rng(6)
    cases = []

    def add(name, d):
        d = floats(d)
        case = {"name": name, "differences": d}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                auto = st.wilcoxon(d)
                case["scipy"] = {"statistic": float(auto.statistic), "p": float(auto.pvalue)}
                approx = st.wilcoxon(d, method="approx")
                case["scipy_approx"] = {
                    "statistic": float(approx.statistic),
                    "p": float(approx.pvalue),
                }
                if 0.0 not in d:
                    exact = st.wilcoxon(d, method="exact")
                    case["scipy_exact"] = {
                        "statistic": float(exact.statistic),
                        "p": float(exact.pvalue),
                    }
            except ValueError as error:
                case["scipy"] = None
                case["scipy_error"] = str(error)
        case["auto_is_exact"] = len(d) <= 50 and 0.0 not in d
        cases.append(case)

    for n in [1, 2, 3, 5, 8, 10, 15, 20, 30, 50]:
        add(f"normal_{n}", rng.normal(0.3, 1.0, n))
    for n in [51, 80, 300]:
        add(f"normal_{n}", rng.normal(0.15, 1.0, n))
    for n in [9, 25, 50]:
        add(f"integer_ties_{n}", rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 4.0], size=n))
    for n in [10, 40, 120]:
        add(f"outcomes_with_zeros_{n}", rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.25, 0.4, 0.35]))
    add("quarters_with_zeros_60", np.round(rng.normal(0.1, 1.0, 60) * 4) / 4)
    add("all_equal_magnitude_12", [1.0, -1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    add("all_zero", [0.0, 0.0, 0.0])
    add("one_nonzero_with_zeros", [0.0, 2.0, 0.0])
    return cases


# --------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------


def scipy_percentile_interval(d, resamples, seed):
    res = st.bootstrap(
        (np.asarray(d, dtype=float),),
        np.mean,
        method="percentile",
        confidence_level=0.95,
        n_resamples=resamples,
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def simulate(design, rng, n):
    if design["distribution"] == "normal":
        return rng.normal(design["mean"], design["sd"], n)
    values, probabilities = design["values"], design["probabilities"]
    return rng.choice(values, size=n, p=probabilities)


def bootstrap_section():
    rng = np.random.default_rng(7)
    degenerate = [
        {"differences": [0.1] * 7},
        {"differences": [3.0] * 30},
        {"differences": [-0.25]},
        {"differences": [0.0] * 12},
    ]
    datasets = []
    for name, d, lattice_step in [
        ("normal_30", rng.normal(0.3, 1.0, 30), 0.0),
        ("outcomes_100", rng.choice([-1.0, 0.0, 1.0], size=100, p=[0.2, 0.5, 0.3]), 0.01),
        ("skewed_60", rng.exponential(1.0, 60) - 0.8, 0.0),
    ]:
        low, high = scipy_percentile_interval(d, 99_999, 8)
        datasets.append(
            {
                "name": name,
                "differences": floats(d),
                "scipy_low": low,
                "scipy_high": high,
                "scipy_resamples": 99_999,
                "standard_error": float(np.std(d) / math.sqrt(len(d))),
                # Means of pass/fail differences lie on a lattice of this spacing (1/n).
                "lattice_step": lattice_step,
            }
        )
    designs = [
        {"name": "normal_n30", "distribution": "normal", "mean": 0.3, "sd": 1.0, "n": 30},
        {
            "name": "outcomes_n50",
            "distribution": "discrete",
            "values": [-1.0, 0.0, 1.0],
            "probabilities": [0.2, 0.5, 0.3],
            "mean": 0.1,
            "n": 50,
        },
    ]
    coverage = []
    for design in designs:
        sims = 4000
        covered = 0
        for _ in range(sims):
            d = simulate(design, rng, design["n"])
            low, high = scipy_percentile_interval(d, 9_999, int(rng.integers(2**32)))
            covered += low <= design["mean"] <= high
        coverage.append(
            dict(design, scipy_datasets=sims, scipy_resamples=9_999, scipy_coverage=covered / sims)
        )
    return {"degenerate": degenerate, "datasets": datasets, "coverage": coverage}


# --------------------------------------------------------------------------------------------
# Clustered standard error, Holm, pass@k, power
# --------------------------------------------------------------------------------------------


def clustered_se(values, groups):
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups)
    mean = values.mean()
    total = 0.0
    for g in np.unique(groups):
        residual = values[groups == g] - mean
        total += np.outer(residual, residual).sum()
    # One cluster: the outer-product sum is 0 in exact arithmetic and may round below it.
    return float(np.sqrt(max(total, 0.0)) / len(values))


def clustered_section():
    rng = np.random.default_rng(9)
    cases = []
    for name, n, clusters, binary in [
        ("singletons_binary_50", 50, None, True),
        ("singletons_normal_17", 17, None, False),
        ("singleton_one", 1, None, False),
        ("ten_clusters_binary_200", 200, 10, True),
        ("uneven_clusters_normal_90", 90, 7, False),
        ("one_cluster_12", 12, 1, False),
    ]:
        if clusters is None:
            groups = [f"task-{i}" for i in range(n)]
        else:
            groups = [f"group-{int(g)}" for g in rng.integers(0, clusters, n)]
        shift = {g: rng.normal(0.0, 0.5) for g in set(groups)}
        if binary:
            values = [float(rng.random() < 0.6 + 0.3 * np.tanh(shift[g])) for g in groups]
        else:
            values = [float(rng.normal(1.0 + shift[g], 1.0)) for g in groups]
        case = {"name": name, "values": values, "groups": groups, "se": clustered_se(values, groups)}
        if clusters is None:
            case["numpy_std_over_sqrt_n"] = float(np.std(values) / math.sqrt(n))
        cases.append(case)
    return cases


def holm_section():
    rng = np.random.default_rng(10)
    lists = [
        [0.01, 0.04, 0.03, 0.005],
        [0.5],
        [0.0, 1.0],
        [0.02, 0.02, 0.02, 0.9, 0.001],
        [0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01],
        floats(rng.uniform(0, 0.2, 25)),
        floats(rng.uniform(0, 1, 12)),
        floats(np.round(rng.uniform(0, 0.1, 30), 2)),
    ]
    return [{"p": p, "adjusted": floats(multipletests(p, method="holm")[1])} for p in lists]


def estimate_pass_at_k(n, c, k):
    """HumanEval's estimator (human_eval/evaluation.py, `estimate_pass_at_k`'s inner function)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_section():
    rows = []
    for n in [1, 2, 5, 10, 20, 100, 200]:
        for c in sorted({0, 1, n // 3, n // 2, n - 1, n} - {-1}):
            for k in sorted({1, 2, 5, 10, 100} & set(range(1, n + 1))):
                rows.append({"n": n, "c": c, "k": k, "pass_at_k": estimate_pass_at_k(n, c, k)})
    return rows


def tasks_needed(difference, sd, alpha, power):
    z = st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)
    n = max(1, math.ceil((z * sd / difference) ** 2))
    while n > 1 and z * sd / math.sqrt(n - 1) <= difference:
        n -= 1
    while z * sd / math.sqrt(n) > difference:
        n += 1
    return n


def power_section():
    mde = []
    for n in [1, 10, 30, 100, 164, 500, 1000, 5000]:
        for sd in [0.0, 0.3, 0.5, 1.0, 2.5]:
            for alpha, power in [(0.05, 0.8), (0.01, 0.8), (0.05, 0.9), (0.1, 0.5)]:
                z = st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)
                mde.append(
                    {"n": n, "sd": sd, "alpha": alpha, "power": power,
                     "mde": float(z * sd / math.sqrt(n))}
                )
    needed = []
    for difference in [0.01, 0.03, 0.05, 0.1, 0.25, 1.0]:
        for sd in [0.2, 0.5, 0.7, 1.0]:
            for alpha, power in [(0.05, 0.8), (0.01, 0.9)]:
                needed.append(
                    {"difference": difference, "sd": sd, "alpha": alpha, "power": power,
                     "tasks": tasks_needed(difference, sd, alpha, power)}
                )
    return {"mde": mde, "tasks_needed": needed}


# --------------------------------------------------------------------------------------------


def compact_json(value, indent=0):
    """JSON with one line per case's scalar list, to keep the file small and its diffs readable."""
    pad = " " * indent
    if isinstance(value, dict) and value and any(isinstance(v, (dict, list)) for v in value.values()):
        items = [
            f"{pad} {json.dumps(k)}: {compact_json(v, indent + 1).lstrip()}" for k, v in value.items()
        ]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        items = [compact_json(v, indent + 1) for v in value]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(value, separators=(",", ":"))


def main():
    doc = {
        "generator": "tools/vectors/stats_vectors.py",
        "packages": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "pandas": pd.__version__,
            "patsy": patsy.__version__,
        },
        "normal": normal_section(),
        "mcnemar": mcnemar_section(),
        "sign": sign_section(),
        "sign_flip_exact": sign_flip_exact_section(),
        "sign_flip_monte_carlo": sign_flip_monte_carlo_section(),
        "wilcoxon": wilcoxon_section(),
        "bootstrap": bootstrap_section(),
        "clustered": clustered_section(),
        "holm": holm_section(),
        "pass_at_k": pass_at_k_section(),
        "power": power_section(),
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as f:
        f.write(compact_json(doc))
        f.write("\n")
    for case in doc["sign_flip_exact"]:
        if "exact_rational" in case and "scipy" in case:
            print(f"{case['name']}: scipy {case['scipy']} exact arithmetic {case['exact_rational']}")
    for case in doc["sign_flip_monte_carlo"]:
        print(f"{case['name']}: exact {case['exact']:.6f} scipy MC {case['scipy_monte_carlo']:.6f}")
    for design in doc["bootstrap"]["coverage"]:
        print(f"coverage {design['name']}: scipy {design['scipy_coverage']:.4f}")


if __name__ == "__main__":
    main()
