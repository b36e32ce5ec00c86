#!/usr/bin/env python3
# Run from the repository root (writes crates/versus-core/tests/vectors/style_control.json, ~2 s):
# python3 -m venv /tmp/r && /tmp/r/bin/pip install numpy==1.26.4 pandas==2.2.3 scikit-learn==1.5.2 scipy==1.14.1 && /tmp/r/bin/python tools/vectors/style_control_vectors.py
"""Reference vectors for versus-core's style control: Chatbot Arena's Bradley-Terry fit with
answer-length and Markdown covariates, and the Arena's Markdown counting.

The reference is the Arena's published code in lm-sys/FastChat (read at commit 0e6d3e4b, 2025-04):

- fastchat/serve/monitor/rating_systems.py: `preprocess_for_style` (the covariates),
  `contextual_bt_loss_and_grad` and `fit_contextual_bt` (the objective and its optimiser),
  `compute_style_control` (the full-data fit) and `compute_bootstrap_style_control` (resamples of
  the rows, covariates standardized once over all battles);
- fastchat/serve/monitor/add_markdown_info.py: `count_markdown_elements` and
  `get_element_counts` (headers, list items and bold spans by regular expression, after removing
  fenced code);
- the first version of the same fit, fastchat/serve/monitor/elo_analysis.py before FastChat
  #3523 (`construct_style_matrices` + `fit_mle_elo`: sklearn's `LogisticRegression` with its
  default C=1 L2 penalty on duplicated battles). The script checks that both forms have the same
  optimum, which is what the comment in rating_systems.py claims ("reg 0.5 ... for parity").

It is re-typed below, not copied. The battle logs are generated here (seeded), so the output is
reproducible with the pinned versions. For every case the file holds:

- `arena`: ratings and style coefficients as `compute_style_control` returns them (scipy's
  L-BFGS-B, gtol 1e-6, at most 100 iterations, scipy's default ftol), without the Arena's
  mixtral anchor (no model here has that name);
- `converged`: the same objective solved to a gradient below 1e-11 by Newton's method (the
  objective is strictly convex, so this is the one optimum the Arena's optimiser approaches);
- `resamples`: a few explicitly listed bootstrap resamples (row positions, as
  `np.random.randint(0, n, n)` draws them) with the reference fit of each, because numpy's
  generator cannot be reproduced in Rust;
- for one case, the standardized covariates themselves (`features`);
- `plain_converged`: plain Bradley-Terry on the same battles (the Arena's `compute_mle_elo`,
  solved to the optimum), to show what style control changes.

`markdown` lists answers with the Arena's counts of headers, list items and bold spans.
"""

import json
import math
import os
import re
import sys
import warnings

import numpy as np
import pandas as pd
import scipy
import sklearn
import sklearn.linear_model
from scipy.optimize import minimize
from scipy.special import expit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ratings_vectors import compact_json, compute_mle_elo, solved_to_optimum  # noqa: E402

OUTPUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "crates",
    "versus-core",
    "tests",
    "vectors",
    "style_control.json",
)

# The Arena's STYLE_CONTROL_ELEMENTS_V1: each side's answer tokens, headers, list items, bold.
ELEMENTS = ["tokens", "headers", "lists", "bold"]


# --------------------------------------------------------------------------------------------
# The Arena's Markdown counting (add_markdown_info.py), re-typed.
# --------------------------------------------------------------------------------------------
CODE_BLOCK = re.compile("```([^`]*)```")


def arena_markdown_counts(answer):
    # get_element_counts: findall returns the text between the fences (the group), and each such
    # text is removed wherever it occurs; the fences themselves stay.
    for block in CODE_BLOCK.findall(answer):
        answer = answer.replace(block, "")
    headers = sum(len(re.findall(r"^#{%d}\s" % level, answer, re.MULTILINE)) for level in range(1, 7))
    lists = len(re.findall(r"^\s*\d+\.\s", answer, re.MULTILINE)) + len(
        re.findall(r"^\s*[-*+]\s", answer, re.MULTILINE)
    )
    bold = len(re.findall(r"\*\*[^*\n]+\*\*", answer)) + len(re.findall(r"__[^_\n]+__", answer))
    return {"headers": headers, "lists": lists, "bold": bold}


# --------------------------------------------------------------------------------------------
# The Arena's style-controlled Bradley-Terry (rating_systems.py), re-typed.
# --------------------------------------------------------------------------------------------
def preprocess_for_style(df, elements=ELEMENTS):
    n = len(df)
    # preprocess_for_elo: models in order of first appearance (model_a column, then model_b),
    # outcome 1 for a model_a win, 0 for a model_b win, 0.5 for either kind of tie.
    codes, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    matchups = np.column_stack([codes[:n], codes[n:]])
    outcomes = np.full(n, 0.5)
    outcomes[(df["winner"] == "model_a").to_numpy()] = 1.0
    outcomes[(df["winner"] == "model_b").to_numpy()] = 0.0
    k = len(elements)
    style = np.zeros((2 * k, n), dtype=np.int32)
    for i, element in enumerate(elements):
        style[i, :] = df[element + "_a"].to_numpy()
        style[k + i, :] = df[element + "_b"].to_numpy()
    diff = (style[:k] - style[k:]).astype(float)
    total = (style[:k] + style[k:]).astype(float) + 1.0  # add_one=True
    diff /= total  # apply_ratio=[1, 1, 1, 1]: every element is normalized
    mean = np.mean(diff, axis=1)
    std = np.std(diff, axis=1)
    features = ((diff - mean[:, None]) / std[:, None]).T
    return matchups, features, outcomes, list(models)


def contextual_loss_and_grad(params, n_models, matchups, features, outcomes, alpha, reg):
    ratings = params[:n_models]
    beta = params[n_models:]
    logits = alpha * (ratings[matchups[:, 0]] - ratings[matchups[:, 1]]) + features @ beta
    probs = expit(logits)
    loss = -(np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)).sum()
    loss += (reg / 2.0) * np.inner(params, params)
    error = outcomes - probs
    grad = reg * params
    np.add.at(grad[:n_models], matchups[:, 0], -alpha * error)
    np.add.at(grad[:n_models], matchups[:, 1], alpha * error)
    grad[n_models:] -= features.T @ error
    return loss, grad


def fit_contextual_bt(matchups, features, outcomes, n_models, idxs=None, alpha=math.log(10.0), reg=0.5, tol=1e-6):
    if idxs is not None:
        matchups, features, outcomes = matchups[idxs], features[idxs], outcomes[idxs]
    result = minimize(
        fun=contextual_loss_and_grad,
        x0=np.zeros(n_models + features.shape[1]),
        args=(n_models, matchups, features, outcomes, alpha, reg),
        jac=True,
        method="L-BFGS-B",
        options={"disp": False, "maxiter": 100, "gtol": tol},
    )
    return result["x"], result


def scaled(params, models, scale=400.0, init_rating=1000.0):
    return {m: float(scale * params[i] + init_rating) for i, m in enumerate(models)}


# --------------------------------------------------------------------------------------------
# The same objective at its optimum, and the first published form of the fit.
# --------------------------------------------------------------------------------------------
def newton_optimum(matchups, features, outcomes, n_models, start, alpha=math.log(10.0), reg=0.5):
    params = np.array(start, dtype=float)
    n, k = features.shape
    design = np.zeros((n, n_models + k))
    design[np.arange(n), matchups[:, 0]] += alpha
    design[np.arange(n), matchups[:, 1]] -= alpha
    design[:, n_models:] = features
    for _ in range(100):
        _, grad = contextual_loss_and_grad(params, n_models, matchups, features, outcomes, alpha, reg)
        if np.max(np.abs(grad)) < 1e-11:
            return params, float(np.max(np.abs(grad)))
        probs = expit(design @ params)
        hessian = design.T @ (design * (probs * (1 - probs))[:, None]) + reg * np.eye(len(params))
        params = params - np.linalg.solve(hessian, grad)
    raise AssertionError("Newton did not converge")


def first_form_optimum(df, models, elements=ELEMENTS, BASE=10):
    """construct_style_matrices + fit_mle_elo (FastChat before #3523): every battle duplicated, a
    win two rows won by the winner, a tie one row won by each; sklearn LogisticRegression with
    fit_intercept=False and its default C=1.0 L2 penalty. Solved to the optimum (newton-cg,
    tol 1e-12) so that it can be compared with the current form's optimum."""
    index = {m: i for i, m in enumerate(models)}
    dup = pd.concat([df, df], ignore_index=True)
    n, p, k = len(dup), len(models), len(elements)
    X = np.zeros((n, p + k))
    X[np.arange(n), dup["model_a"].map(index).to_numpy()] = +math.log(BASE)
    X[np.arange(n), dup["model_b"].map(index).to_numpy()] = -math.log(BASE)
    a = np.array([dup[e + "_a"].to_numpy() for e in elements], dtype=float)
    b = np.array([dup[e + "_b"].to_numpy() for e in elements], dtype=float)
    diff = (a - b) / (a + b + 1.0)
    X[:, -k:] = ((diff - diff.mean(axis=1)[:, None]) / diff.std(axis=1)[:, None]).T
    Y = np.zeros(n)
    Y[(dup["winner"] == "model_a").to_numpy()] = 1.0
    tie = dup["winner"].isin(["tie", "tie (bothbad)"]).to_numpy()
    tie[n // 2 :] = False
    Y[tie] = 1.0
    lr = sklearn.linear_model.LogisticRegression(
        fit_intercept=False, solver="newton-cg", tol=1e-12, max_iter=1000
    )
    lr.fit(X, Y)
    return lr.coef_[0]


# --------------------------------------------------------------------------------------------
# Battle logs with style.
# --------------------------------------------------------------------------------------------
def generate(rng, habits, strengths, n, effects, tie=0.15, bothbad=0.05, pairs=None, spread=0.35):
    """Battles between models with hidden strengths (Elo scale) and habits: each model's answers
    have a typical token length (log-normal, `spread` its log's deviation) and Poisson counts of headers, list items and bold
    spans. The winner follows strength plus `effects` times the normalized style differences, so
    that style really sways the votes."""
    names = list(strengths)
    rows = []
    for _ in range(n):
        if pairs is None:
            i, j = rng.choice(len(names), size=2, replace=False)
            a, b = names[i], names[j]
        else:
            a, b = pairs[int(rng.integers(len(pairs)))]
            if rng.random() < 0.5:
                a, b = b, a
        row = {"model_a": a, "model_b": b}
        for side, model in (("a", a), ("b", b)):
            length, headers, lists, bold = habits[model]
            row["tokens_" + side] = int(max(1, round(rng.lognormal(math.log(length), spread))))
            row["headers_" + side] = int(rng.poisson(headers))
            row["lists_" + side] = int(rng.poisson(lists))
            row["bold_" + side] = int(rng.poisson(bold))
        logit = math.log(10) * (strengths[a] - strengths[b]) / 400
        for element, effect in zip(ELEMENTS, effects):
            x, y = row[element + "_a"], row[element + "_b"]
            logit += effect * (x - y) / (x + y + 1)
        u = rng.random()
        if u < tie:
            row["winner"] = "tie"
        elif u < tie + bothbad:
            row["winner"] = "tie (bothbad)"
        else:
            row["winner"] = "model_a" if rng.random() < 1 / (1 + math.exp(-logit)) else "model_b"
        rows.append(row)
    return rows


def frame(rows):
    return pd.DataFrame(rows)


def fit_case(df, elements=ELEMENTS, idxs=None, full=None):
    """The Arena's fit of `df` (or of rows `idxs` of it, covariates standardized over all of
    `df`), with the optimum of the same objective. Coefficients come out in ELEMENTS order, 0 for
    an element left out of `elements`."""
    matchups, features, outcomes, models = preprocess_for_style(df, elements)
    params, result = fit_contextual_bt(matchups, features, outcomes, len(models), idxs=idxs)
    sub = (matchups, features, outcomes) if idxs is None else (matchups[idxs], features[idxs], outcomes[idxs])
    best, gradient = newton_optimum(*sub, len(models), params)

    def coefficients(values):
        by_name = dict(zip(elements, values[len(models):]))
        return [float(by_name.get(e, 0.0)) for e in ELEMENTS]

    present = sorted(set(matchups[:, 0]) | set(matchups[:, 1])) if idxs is None else sorted(
        set(matchups[idxs, 0]) | set(matchups[idxs, 1])
    )
    keep = {models[i] for i in present}
    arena = {m: r for m, r in scaled(params, models).items() if m in keep}
    converged = {m: r for m, r in scaled(best, models).items() if m in keep}
    return {
        "arena": {"ratings": arena, "coefficients": coefficients(params)},
        "arena_iterations": int(result["nit"]),
        "arena_message": str(result["message"]),
        "converged": {"ratings": converged, "coefficients": coefficients(best)},
        "converged_max_gradient": gradient,
    }, (models, best)


def battle_rows(rows):
    return [
        {
            "model_a": r["model_a"],
            "model_b": r["model_b"],
            "winner": r["winner"],
            "style_a": [r[e + "_a"] for e in ELEMENTS],
            "style_b": [r[e + "_b"] for e in ELEMENTS],
        }
        for r in rows
    ]


def case(name, description, seed, rows, resamples=0, elements=ELEMENTS, with_features=False):
    df = frame(rows)
    fitted, (models, best) = fit_case(df, elements)
    out = {"name": name, "description": description, "seed": seed, "battles": battle_rows(rows)}
    out["battles_source"] = rows
    if elements != ELEMENTS:
        out["elements_fitted"] = elements
    out.update(fitted)
    # The first published form has the same optimum (where every covariate varies).
    if elements == ELEMENTS:
        first = first_form_optimum(df, models)
        worst = float(np.max(np.abs(first - best)))
        assert worst < 1e-7, f"{name}: the two published forms differ by {worst}"
        out["first_form_max_difference"] = worst
    with solved_to_optimum(), warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = compute_mle_elo(df[["model_a", "model_b", "winner"]])
    out["plain_converged"] = {str(k): float(v) for k, v in plain.items()}
    if with_features:
        out["features"] = preprocess_for_style(df, elements)[1].tolist()
    out["resamples"] = []
    rng = np.random.default_rng(seed + 1_000_000)
    for _ in range(resamples):
        # compute_bootstrap_style_control: np.random.randint(0, n, size=n) row positions.
        idxs = rng.integers(0, len(rows), size=len(rows))
        fitted, _ = fit_case(df, elements, idxs=idxs)
        entry = {"indices": [int(i) for i in idxs]}
        entry.update(fitted)
        out["resamples"].append(entry)
    return out


MARKDOWN_SAMPLES = [
    "",
    "Just a sentence with 2 * 3 * 4 = 24 and no markup.",
    "# One\n## Two\n### Three\n#### Four\n##### Five\n###### Six\n####### Seven\n#NoSpace\n  # Indented",
    "#\n# after an empty header\n##\ttab",
    "Title\n=====\nSub\n---",
    "- a\n* b\n+ c\n  - nested\n-not\n1. one\n2) paren\n   10. ten\n3.not\n1.\nnext line",
    "a\n\n- after a blank line\n\n\n* two blank lines\n",
    "* * *\n---\n***\n- - -",
    "**one** and __two__ and ***three*** and **four\n** not ** and snake__case__name",
    "**a**b**c** and ****empty**** and __x____y__",
    "Intro\n```python\n# not a header\n- not an item\n**not bold**\n```\nAfter **bold**\n# Header",
    "```\nx\n```\nthe block's text (a line x) is removed, not every x: **x**",
    "Use ```x``` inline: its text x is removed everywhere, so **x** is no longer bold",
    "```a```b```c```\n- item\n```",
    "Unclosed fence\n```\n# still counted\n- also counted",
    "~~~\n# tildes are not removed\n~~~",
    "Windows\r\n# Header\r\n- item\r\n**bold**\r\n",
    "Unicode:\n\u00a0- nbsp before\n\u2003* em space\n\x1c- file separator\n\u0661. arabic-indic one\n\u0966. devanagari zero",
    "1. **Data**: examples.\n2. **Model**: a function.\n\n## Key ideas\n\n- Supervised\n- Unsupervised\n\n```python\nprint('hi')\n```\n",
    "> # quoted header\n> - quoted item\n> **quoted bold**",
    "Table\n| a | b |\n|---|---|\n| **x** | 1. y |",
]


def main():
    cases = []

    # One model wins by length alone: all four are equally strong, "verbose" writes ~4x longer
    # answers, and votes favour the longer answer. Plain Bradley-Terry puts verbose far ahead;
    # style control should bring the ratings together.
    equal = {"verbose": 1000.0, "alpha": 1000.0, "beta": 1000.0, "gamma": 1000.0}
    habits = {
        "verbose": (600, 0.5, 2.0, 1.0),
        "alpha": (150, 0.5, 2.0, 1.0),
        "beta": (180, 0.5, 2.0, 1.0),
        "gamma": (160, 0.5, 2.0, 1.0),
    }
    rows = generate(np.random.default_rng(31), habits, equal, 800, effects=(2.5, 0.0, 0.0, 0.0), spread=0.8)
    length = case("wins_by_length", "4 equal models; verbose writes longer answers and votes favour length", 31, rows, resamples=2)
    plain, styled = length["plain_converged"], length["converged"]["ratings"]
    plain_gap = plain["verbose"] - max(v for m, v in plain.items() if m != "verbose")
    styled_gap = styled["verbose"] - max(v for m, v in styled.items() if m != "verbose")
    assert plain_gap > 100 and abs(styled_gap) < plain_gap / 4, (plain_gap, styled_gap)
    assert length["converged"]["coefficients"][0] > 0.3, length["converged"]["coefficients"]
    cases.append(length)

    strengths = {"ares": 1150.0, "boreas": 1080.0, "ceto": 1040.0, "doris": 1000.0, "eos": 900.0}
    habits = {
        "ares": (400, 3.0, 8.0, 5.0),
        "boreas": (250, 0.5, 3.0, 1.0),
        "ceto": (500, 2.0, 10.0, 6.0),
        "doris": (120, 0.0, 0.5, 0.2),
        "eos": (300, 1.0, 4.0, 2.0),
    }
    cases.append(
        case(
            "five_models_styles",
            "5 models with different strengths and habits; every covariate sways votes; ties of both kinds",
            32,
            generate(np.random.default_rng(32), habits, strengths, 800, effects=(1.2, 0.4, 0.6, 0.5)),
            resamples=3,
        )
    )

    three = {"red": 1080.0, "green": 1000.0, "blue": 960.0}
    habits = {"red": (80, 0.2, 1.0, 0.3), "green": (60, 0.0, 0.3, 0.1), "blue": (90, 0.1, 0.2, 0.0)}
    cases.append(
        case(
            "three_models_small",
            "3 models, 40 battles, mostly zero Markdown counts (zero sums), ties",
            33,
            generate(np.random.default_rng(33), habits, three, 40, effects=(1.0, 0.0, 0.5, 0.0), tie=0.2, bothbad=0.1),
            with_features=True,
        )
    )

    # No answer has a bold span: that covariate is constant, the Arena's standardization divides
    # 0 by 0, and versus leaves the column at zero. With a zero column the fit is the fit without
    # it, so the reference is the Arena's fit with the bold element left out.
    habits = {"red": (200, 1.0, 3.0, 0.0), "green": (150, 0.5, 4.0, 0.0), "blue": (260, 2.0, 1.0, 0.0)}
    cases.append(
        case(
            "no_bold_anywhere",
            "3 models, 400 battles, no bold span in any answer",
            34,
            generate(np.random.default_rng(34), habits, three, 400, effects=(1.0, 0.3, 0.3, 0.0)),
            elements=["tokens", "headers", "lists"],
        )
    )
    # What the Arena itself computes here: 0/0 in the bold column, so every covariate row is NaN.
    with np.errstate(invalid="ignore"):
        nan_features = preprocess_for_style(frame(cases[-1]["battles_source"]))[1]
    assert np.isnan(nan_features[:, 3]).all()
    cases[-1]["arena_with_bold_is_nan"] = True

    five = {"ares": 1100.0, "boreas": 1050.0, "ceto": 1000.0, "doris": 1020.0, "eos": 950.0}
    habits = {m: (100 + 60 * i, 0.3 * i, 1.0 + i, 0.5 * i) for i, m in enumerate(five)}
    pairs = [("ares", "boreas"), ("boreas", "ceto"), ("ares", "ceto"), ("doris", "eos")]
    cases.append(
        case(
            "unconnected_groups",
            "ares/boreas/ceto never meet doris/eos: each group is centred on 1000, the coefficients are shared",
            35,
            generate(np.random.default_rng(35), habits, five, 500, effects=(1.0, 0.2, 0.3, 0.2), pairs=pairs),
        )
    )

    markdown = [{"text": text, **arena_markdown_counts(text)} for text in MARKDOWN_SAMPLES]

    doc = {
        "generator": "tools/vectors/style_control_vectors.py",
        "packages": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "scipy": scipy.__version__,
        },
        "scale": 400,
        "base": 10,
        "init_rating": 1000,
        "regularization": 0.5,
        "elements": ELEMENTS,
        "cases": cases,
        "markdown": markdown,
    }
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    for c in cases:
        del c["battles_source"]
    with open(OUTPUT, "w") as f:
        f.write(compact_json(doc))
        f.write("\n")
    for c in cases:
        print(c["name"], len(c["battles"]), "battles;", c["arena_iterations"], "iterations;", c["arena_message"])
        print("  coefficients arena", ["%.6f" % v for v in c["arena"]["coefficients"]])
        print("  coefficients opt  ", ["%.6f" % v for v in c["converged"]["coefficients"]])
        for m, r in sorted(c["converged"]["ratings"].items(), key=lambda kv: -kv[1]):
            a = c["arena"]["ratings"][m]
            print(f"  {m:8s} styled {r:.6f} (arena {a - r:+.1e})  plain {c['plain_converged'][m]:.3f}")
    for m in markdown:
        print(repr(m["text"][:40]), m["headers"], m["lists"], m["bold"])


if __name__ == "__main__":
    main()
