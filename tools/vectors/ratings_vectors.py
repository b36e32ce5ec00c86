#!/usr/bin/env python3
# Run from the repository root (writes crates/versus-core/tests/vectors/ratings.json, ~2 s):
# python3 -m venv /tmp/r && /tmp/r/bin/pip install numpy==1.26.4 pandas==2.2.3 scikit-learn==1.5.2 scipy==1.14.1 && /tmp/r/bin/python tools/vectors/ratings_vectors.py
"""Reference vectors for versus-core's ratings: battle logs and Chatbot Arena's Bradley-Terry fit.

The battle logs are generated here (seeded), so the output is reproducible with the pinned
versions. For every case the file holds:

- `arena`: the ratings exactly as the Arena's published code computes them (`compute_mle_elo`
  below: sklearn's lbfgs, which stops once the largest gradient component is below tol=1e-6);
- `converged` (only where the maximum-likelihood estimate exists): the same function, the same
  design matrix and weights, with sklearn's solver swapped for newton-cg run to a gradient of
  1e-12, i.e. the exact optimum the Arena's lbfgs approximates; versus-core solves to the optimum,
  so this is what its tests compare with at 1e-6. Where the estimate does not exist (a model or
  group that never loses) there is only `arena`: the point where lbfgs stopped, which versus-core
  reproduces by replaying the same optimiser;
- `resamples`: a few explicitly listed bootstrap resamples (row indices, as
  `battles.sample(frac=1.0, replace=True)` would draw them) with the reference ratings of each,
  because numpy's generator cannot be reproduced in Rust;
- a `quantiles` case: a table of bootstrap rounds (with missing models), and the Arena's 2.5% and
  97.5% quantiles (pandas, linear interpolation, NaN skipped) and ranks from intervals.
"""

import json
import math
import os
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import scipy
import sklearn
import sklearn.linear_model

OUTPUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "crates",
    "versus-core",
    "tests",
    "vectors",
    "ratings.json",
)

WINNERS = ["model_a", "model_b", "tie", "tie (bothbad)"]


# --------------------------------------------------------------------------------------------
# The Arena's reference code, re-typed.
#
# compute_mle_elo: from the Chatbot Arena notebook published with
# https://lmsys.org/blog/2023-12-07-leaderboard/ (colab 1KdwokPjirkTmpO_P1WByFNFiqxWQquwH); the
# same function is `compute_mle_elo` / `compute_elo_mle_with_tie` in lm-sys/FastChat
# fastchat/serve/monitor/elo_analysis.py (2024). Wins count 2 and a tie (either kind) counts 1 for
# each side, as sample weights on one "row beats column" and one "column beats row" row per pair.
# The mixtral anchor is kept for faithfulness; no model here has that name, so it does nothing
# (versus does not anchor).
# --------------------------------------------------------------------------------------------
def compute_mle_elo(df, SCALE=400, BASE=10, INIT_RATING=1000, sample_weight=None):
    from sklearn.linear_model import LogisticRegression

    ptbl_a_win = pd.pivot_table(
        df[df["winner"] == "model_a"],
        index="model_a",
        columns="model_b",
        aggfunc="size",
        fill_value=0,
    )
    # if no tie, create a zero matrix
    if sum(df["winner"].isin(["tie", "tie (bothbad)"])) == 0:
        ptbl_tie = pd.DataFrame(0, index=ptbl_a_win.index, columns=ptbl_a_win.columns)
    else:
        ptbl_tie = pd.pivot_table(
            df[df["winner"].isin(["tie", "tie (bothbad)"])],
            index="model_a",
            columns="model_b",
            aggfunc="size",
            fill_value=0,
        )
        ptbl_tie = ptbl_tie + ptbl_tie.T

    ptbl_b_win = pd.pivot_table(
        df[df["winner"] == "model_b"],
        index="model_a",
        columns="model_b",
        aggfunc="size",
        fill_value=0,
    )
    ptbl_win = ptbl_a_win * 2 + ptbl_b_win.T * 2 + ptbl_tie

    models = pd.Series(np.arange(len(ptbl_win.index)), index=ptbl_win.index)

    p = len(models)
    X = np.zeros([p * (p - 1) * 2, p])
    Y = np.zeros(p * (p - 1) * 2)

    cur_row = 0
    sample_weights = []
    for m_a in ptbl_win.index:
        for m_b in ptbl_win.columns:
            if m_a == m_b:
                continue
            # if nan skip
            if math.isnan(ptbl_win.loc[m_a, m_b]) or math.isnan(ptbl_win.loc[m_b, m_a]):
                continue
            X[cur_row, models[m_a]] = +math.log(BASE)
            X[cur_row, models[m_b]] = -math.log(BASE)
            Y[cur_row] = 1.0
            sample_weights.append(ptbl_win.loc[m_a, m_b])

            X[cur_row + 1, models[m_a]] = math.log(BASE)
            X[cur_row + 1, models[m_b]] = -math.log(BASE)
            Y[cur_row + 1] = 0.0
            sample_weights.append(ptbl_win.loc[m_b, m_a])
            cur_row += 2
    X = X[:cur_row]
    Y = Y[:cur_row]

    lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-6)
    lr.fit(X, Y, sample_weight=sample_weights)
    elo_scores = SCALE * lr.coef_[0] + INIT_RATING
    if "mixtral-8x7b-instruct-v0.1" in models.index:
        elo_scores += 1114 - elo_scores[models["mixtral-8x7b-instruct-v0.1"]]
    return pd.Series(elo_scores, index=models.index).sort_values(ascending=False)


# --------------------------------------------------------------------------------------------
# The Arena's other published form of the same likelihood: every battle is duplicated; a win is
# two rows with the same label, a tie (either kind) one row won by model_a and one by model_b.
# Re-typed from the first Arena notebook (https://lmsys.org/blog/2023-05-03-arena/ and
# lm-sys/FastChat elo_analysis.py `construct_style_matrices`, same tie handling), fitted with
# compute_mle_elo's LogisticRegression settings (penalty=None, tol=1e-6) so both forms stop by the
# same rule. It is used for the case where compute_mle_elo's pivot tables drop a model: a model
# that never loses never appears in the "lost as model_b" columns, so every one of its pairs is
# NaN and skipped, and its coefficient stays at the starting value 0 (rating 1000).
# --------------------------------------------------------------------------------------------
def compute_mle_elo_duplicated(df, SCALE=400, BASE=10, INIT_RATING=1000):
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)

    # duplicate battles
    df = pd.concat([df, df], ignore_index=True)
    p = len(models.index)
    n = df.shape[0]

    X = np.zeros([n, p])
    X[np.arange(n), models[df["model_a"]]] = +math.log(BASE)
    X[np.arange(n), models[df["model_b"]]] = -math.log(BASE)

    # one A win => two A win
    Y = np.zeros(n)
    Y[df["winner"] == "model_a"] = 1.0

    # one tie => one A win + one B win
    # find tie + tie (both bad) index
    tie_idx = (df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")
    tie_idx[len(tie_idx) // 2 :] = False
    Y[tie_idx] = 1.0

    lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-6)
    lr.fit(X, Y)
    elo_scores = SCALE * lr.coef_[0] + INIT_RATING
    return pd.Series(elo_scores, index=models.index).sort_values(ascending=False)


# The Arena's ranks from intervals (report_elo_analysis_results in FastChat elo_analysis.py):
# a model's rank is 1 + the number of models whose 2.5% quantile is above its 97.5% quantile.
def ranks_from_intervals(model_order, q025, q975):
    ranking = {}
    for i, model_a in enumerate(model_order):
        ranking[model_a] = 1
        for j, model_b in enumerate(model_order):
            if i == j:
                continue
            if q025[model_b] > q975[model_a]:
                ranking[model_a] += 1
    return ranking


# --------------------------------------------------------------------------------------------
# Solving the same objective to the optimum, and checking it.
# --------------------------------------------------------------------------------------------
_SklearnLogisticRegression = sklearn.linear_model.LogisticRegression


class _NewtonToOptimum(_SklearnLogisticRegression):
    """LogisticRegression whose fit runs newton-cg to a 1e-12 gradient instead of lbfgs to 1e-6.

    newton-cg, like lbfgs, starts at zero and only moves along gradients and Hessian products, so
    it stays on the same "coefficients of each connected group sum to zero" subspace and finds the
    same point lbfgs is heading for."""

    def fit(self, X, y, sample_weight=None):
        self.solver = "newton-cg"
        self.tol = 1e-12
        self.max_iter = 1000
        return super().fit(X, y, sample_weight=sample_weight)


@contextmanager
def solved_to_optimum():
    # The reference functions import LogisticRegression from sklearn.linear_model when called,
    # so swapping the module attribute swaps the solver without editing the re-typed code.
    sklearn.linear_model.LogisticRegression = _NewtonToOptimum
    try:
        yield
    finally:
        sklearn.linear_model.LogisticRegression = _SklearnLogisticRegression


def mean_loss_gradient(df, ratings, SCALE=400, BASE=10, INIT_RATING=1000):
    """The gradient (in coefficient units) of sklearn's mean weighted log-loss at `ratings`."""
    beta = {m: (r - INIT_RATING) / SCALE for m, r in ratings.items()}
    c = math.log(BASE)
    grad = {m: 0.0 for m in beta}
    total = 0.0
    for a, b, w in df[["model_a", "model_b", "winner"]].itertuples(index=False):
        points_a = {"model_a": 2.0, "model_b": 0.0}.get(w, 1.0)
        prob_a = 1.0 / (1.0 + math.exp(-c * (beta[a] - beta[b])))
        g = c * (2.0 * prob_a - points_a)
        grad[a] += g
        grad[b] -= g
        total += 2.0
    return {m: g / total for m, g in grad.items()}


def pivot_keeps_every_pair(df):
    """True when compute_mle_elo's NaN skip drops nothing: every model has won, lost and tied
    (or there are no ties at all) both as model_a and as model_b."""
    models = set(df["model_a"]) | set(df["model_b"])
    has_ties = df["winner"].isin(["tie", "tie (bothbad)"]).any()
    for m in models:
        as_a = df[df["model_a"] == m]["winner"]
        as_b = df[df["model_b"] == m]["winner"]
        needed = [
            (as_a == "model_a").any(),
            (as_a == "model_b").any(),
            (as_b == "model_a").any(),
            (as_b == "model_b").any(),
        ]
        if has_ties:
            needed += [as_a.str.startswith("tie").any(), as_b.str.startswith("tie").any()]
        if not all(needed):
            return False
    return True


def as_dict(series):
    return {str(k): float(v) for k, v in series.items()}


def reference_ratings(df, reference, exists):
    fit = {"compute_mle_elo": compute_mle_elo, "compute_mle_elo_duplicated": compute_mle_elo_duplicated}[
        reference
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arena = as_dict(fit(df))
    arena_warnings = sorted({str(w.message).splitlines()[0] for w in caught})
    out = {"arena": arena, "arena_warnings": arena_warnings}
    if exists:
        with solved_to_optimum(), warnings.catch_warnings():
            warnings.simplefilter("error")  # a solver warning here would mean "not converged"
            converged = as_dict(fit(df))
        worst = max(abs(g) for g in mean_loss_gradient(df, converged).values())
        assert worst < 1e-10, f"newton-cg left a gradient of {worst}"
        out["converged"] = converged
        out["converged_max_gradient"] = worst
    return out


# --------------------------------------------------------------------------------------------
# Battle logs.
# --------------------------------------------------------------------------------------------
def generate_battles(rng, strengths, n, tie=0.15, bothbad=0.05, pairs=None, categories=None):
    """Battles between models with hidden Elo-scale strengths: a decisive battle goes to model_a
    with the Bradley-Terry probability; a share of battles are ties of either kind."""
    names = list(strengths)
    rows = []
    for i in range(n):
        if pairs is None:
            a, b = rng.choice(len(names), size=2, replace=False)
            model_a, model_b = names[a], names[b]
        else:
            model_a, model_b = pairs[rng.integers(len(pairs))]
            if rng.random() < 0.5:
                model_a, model_b = model_b, model_a
        u = rng.random()
        if u < tie:
            winner = "tie"
        elif u < tie + bothbad:
            winner = "tie (bothbad)"
        else:
            p_a = 1.0 / (1.0 + 10 ** ((strengths[model_b] - strengths[model_a]) / 400))
            winner = "model_a" if rng.random() < p_a else "model_b"
        row = {"model_a": model_a, "model_b": model_b, "winner": winner}
        if categories:
            row["category"] = categories[int(rng.integers(len(categories)))]
            row["task"] = f"task-{int(rng.integers(20)):02d}"
            row["judge"] = f"judge-{int(rng.integers(3))}"
        rows.append(row)
    return rows


def first_seed_where(seed, make, accept):
    """Scans seeds from `seed` until the generated log is acceptable (small logs need it: the
    reference's pivot tables silently drop a model that lacks some role/outcome combination)."""
    while True:
        rows = make(np.random.default_rng(seed))
        if accept(rows):
            return seed, rows
        seed += 1


def frame(rows):
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def case(name, description, seed, rows, reference="compute_mle_elo", exists=True, resamples=0):
    df = frame(rows)
    if reference == "compute_mle_elo":
        assert pivot_keeps_every_pair(df), f"{name}: the reference would drop a model"
    out = {
        "name": name,
        "description": description,
        "seed": seed,
        "reference": reference,
        "mle_exists": exists,
        "battles": rows,
    }
    out.update(reference_ratings(df, reference, exists))
    out["resamples"] = []
    rng = np.random.default_rng(seed + 1_000_000)
    while len(out["resamples"]) < resamples:
        # What battles.sample(frac=1.0, replace=True) draws: len(battles) row positions, uniform,
        # with replacement.
        indices = rng.integers(0, len(rows), size=len(rows))
        sample = df.iloc[indices]
        if reference == "compute_mle_elo" and not pivot_keeps_every_pair(sample):
            continue
        entry = {"indices": [int(i) for i in indices]}
        entry.update(reference_ratings(sample, reference, exists))
        out["resamples"].append(entry)
    return out


def quantiles_case(seed):
    """A table of bootstrap rounds (some models missing from some rounds, as when a resample
    lacks a model: pandas then has NaN, which quantile() skips) and what the Arena derives."""
    rng = np.random.default_rng(seed)
    centres = {"alpha": 1150.0, "beta": 1120.0, "gamma": 1010.0, "delta": 1000.0, "eps": 870.0}
    rounds = []
    for _ in range(257):
        row = {m: float(c + rng.normal(0, 25)) for m, c in centres.items()}
        if rng.random() < 0.1:
            row["eps"] = None
        rounds.append(row)
    table = pd.DataFrame([{m: (np.nan if v is None else v) for m, v in r.items()} for r in rounds])
    q025 = table.quantile(0.025)
    q975 = table.quantile(0.975)
    order = list(table.median().sort_values(ascending=False).index)
    ranks = ranks_from_intervals(order, q025, q975)
    return {
        "name": "bootstrap_table",
        "seed": seed,
        "rounds": rounds,
        "lower": as_dict(q025),
        "upper": as_dict(q975),
        "rank": {m: int(r) for m, r in ranks.items()},
    }


def compact_json(value, indent=0):
    """JSON with one line per battle, rating table or index list, to keep the file small and its
    diffs readable."""
    pad = " " * indent
    if isinstance(value, dict) and value and any(isinstance(v, (dict, list)) for v in value.values()):
        items = [
            f'{pad} {json.dumps(k)}: {compact_json(v, indent + 1).lstrip()}' for k, v in value.items()
        ]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        items = [compact_json(v, indent + 1) for v in value]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(value, separators=(",", ":"))


def main():
    five = {"ares": 1180.0, "boreas": 1100.0, "ceto": 1060.0, "doris": 1000.0, "eos": 880.0}
    cases = []

    cases.append(
        case(
            "five_models_2000",
            "5 models, 2000 battles, 15% ties and 5% bothbad ties",
            11,
            generate_battles(np.random.default_rng(11), five, 2000),
        )
    )
    cases.append(
        case(
            "five_models_500",
            "5 models, 500 battles, ties of both kinds; with bootstrap resamples",
            12,
            generate_battles(np.random.default_rng(12), five, 500, categories=("coding", "writing")),
            resamples=4,
        )
    )
    four = {"kilo": 1090.0, "lima": 1040.0, "mike": 1000.0, "november": 950.0}
    cases.append(
        case(
            "four_models_no_ties",
            "4 models, 800 decisive battles (the reference's no-tie branch)",
            13,
            generate_battles(np.random.default_rng(13), four, 800, tie=0.0, bothbad=0.0),
        )
    )
    three = {"red": 1100.0, "green": 1000.0, "blue": 950.0}
    seed, rows = first_seed_where(
        14,
        lambda rng: generate_battles(rng, three, 36, tie=0.2, bothbad=0.1),
        lambda rows: pivot_keeps_every_pair(frame(rows)),
    )
    cases.append(
        case("three_models_small", "3 models, 36 battles", seed, rows, resamples=3)
    )
    pairs = [("ares", "boreas"), ("boreas", "ceto"), ("ares", "ceto"), ("doris", "eos")]
    cases.append(
        case(
            "unconnected_pair",
            "ares/boreas/ceto never meet doris/eos: two groups, each centred on 1000",
            15,
            generate_battles(np.random.default_rng(15), five, 900, pairs=pairs),
        )
    )

    # A champion that never loses (and never ties): no finite MLE exists. The Arena's lbfgs still
    # returns finite numbers, because it stops once the gradient is below tol.
    def never_loses(rng):
        rows = generate_battles(rng, {"wind": 1050.0, "rain": 1000.0, "snow": 960.0}, 300)
        for _ in range(60):
            other = ["wind", "rain", "snow"][int(rng.integers(3))]
            if rng.random() < 0.5:
                rows.append({"model_a": "champion", "model_b": other, "winner": "model_a"})
            else:
                rows.append({"model_a": other, "model_b": "champion", "winner": "model_b"})
        order = rng.permutation(len(rows))
        return [rows[i] for i in order]

    rows = never_loses(np.random.default_rng(16))
    never = case(
        "never_loses",
        "champion wins all 60 of its battles; the others play 300 ordinary ones",
        16,
        rows,
        reference="compute_mle_elo_duplicated",
        exists=False,
        resamples=3,
    )
    # What compute_mle_elo itself does with this log (kept to document why it is not the
    # reference here): the champion's pairs are all skipped and it stays at 1000.
    never["compute_mle_elo_drops_model"] = as_dict(compute_mle_elo(frame(rows)))
    cases.append(never)

    # A group that is never beaten: two leaders split their own games but never lose (nor tie)
    # against the three others; every rating is again where lbfgs stopped.
    def unbeaten_pair(rng):
        rows = generate_battles(rng, {"wind": 1050.0, "rain": 1000.0, "snow": 960.0}, 240)
        rows += generate_battles(rng, {"sun": 1100.0, "moon": 1080.0}, 40)
        for _ in range(80):
            leader = ["sun", "moon"][int(rng.integers(2))]
            other = ["wind", "rain", "snow"][int(rng.integers(3))]
            if rng.random() < 0.5:
                rows.append({"model_a": leader, "model_b": other, "winner": "model_a"})
            else:
                rows.append({"model_a": other, "model_b": leader, "winner": "model_b"})
        order = rng.permutation(len(rows))
        return [rows[i] for i in order]

    cases.append(
        case(
            "unbeaten_pair",
            "sun and moon play each other normally but never lose to wind, rain or snow",
            18,
            unbeaten_pair(np.random.default_rng(18)),
            reference="compute_mle_elo_duplicated",
            exists=False,
        )
    )
    twelve = {f"m{i:02d}": 1000.0 + 25.0 * (i - 6) for i in range(12)}
    cases.append(
        case(
            "twelve_models_2000",
            "12 models 25 points apart, 2000 battles",
            19,
            generate_battles(np.random.default_rng(19), twelve, 2000),
        )
    )

    doc = {
        "generator": "tools/vectors/ratings_vectors.py",
        "packages": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "scipy": scipy.__version__,
        },
        "scale": 400,
        "base": 10,
        "init_rating": 1000,
        "cases": cases,
        "quantiles": [quantiles_case(17)],
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as f:
        f.write(compact_json(doc))
        f.write("\n")
    for c in cases:
        print(c["name"], len(c["battles"]), "battles", c.get("arena_warnings"))
        for m, r in sorted(c["arena"].items(), key=lambda kv: -kv[1]):
            conv = c.get("converged", {}).get(m)
            extra = "" if conv is None else f"  converged {conv:.9f}  diff {r - conv:+.2e}"
            print(f"  {m:10s} {r:.9f}{extra}")


if __name__ == "__main__":
    main()
