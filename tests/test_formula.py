"""Regression formulas: nothing but columns, numbers, formula operators and an allowlist of
transforms reaches patsy (which evaluates a formula as Python). The injection formula of
issue 9 writes no file through `analysis.regress` or `econsim regress` (the app's page is
checked in test_app.py); valid formulas still fit, with the same numbers as statsmodels."""

import os
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from econsim import analysis, cli, formula, runner, scenario

COLUMNS = ["collective", "y", "x", "z", "mechanism", "seed"]
INJECTION = "collective ~ I(__import__('os').system('id > pwned'))"


def _data(n_groups: int = 12, per: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.uniform(1, 3, g.size)
    m = rng.choice(["flat(rate=0.3)", "us_federal", "free_market"], g.size)
    y = 1 + 2 * x + (m == "us_federal") + rng.normal(size=n_groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"collective": y, "y": y, "x": x, "z": rng.normal(size=g.size),
                         "mechanism": m, "seed": g})


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so a file the formula writes would show up there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_injection_formula_runs_nothing(in_tmp, capsys):
    with pytest.raises(ValueError, match=r"'__import__' at position \d+ is not allowed") as err:
        analysis.regress(INJECTION, _data())
    assert "\n" not in str(err.value) and "allowed:" in str(err.value)
    # the command line, on a stored run's tables: exit status 2, one line, nothing written
    data = scenario.load("ipd_pg").resolved()
    data["train"].update(iterations=1, log_every=1, eval_every=1, eval_episodes=1)
    runner.run(scenario.from_dict(data, "ipd"), seeds=[0, 1], progress=False, root="runs")
    capsys.readouterr()
    assert cli.main(["--root", "runs", "regress", INJECTION]) == 2
    err = capsys.readouterr().err
    assert "'__import__' at position" in err and err.count("\n") == 1
    assert not (in_tmp / "pwned").exists() and os.listdir(in_tmp) == ["runs"]
    # nor does one that would hang (the probe's `9**9**9**9`: 100 % CPU until killed)
    assert cli.main(["--root", "runs", "regress", "collective ~ I(seed + 9**9**9**9)"]) == 2
    err = capsys.readouterr().err
    assert "a power of a power" in err and err.count("\n") == 1


@pytest.mark.parametrize(("text", "match"), [
    ("y ~ x.real", r"'\.' at position 5 is not allowed: attribute access"),
    ("y ~ x.__class__", r"'\.' at position 5 is not allowed"),
    ("y ~ np.os", r"'os' at position 7 is not allowed: only np.log, np.exp and np.sqrt"),
    ("y ~ np.linalg.inv(x)", r"'linalg' .* only np.log"),
    ("y ~ __builtins__", r"'__builtins__' .* dunder names"),
    ("y ~ (lambda: 1)()", r"'lambda' .* Python keywords"),
    ("y ~ I(x if x else 1)", r"expected '\)' to close I\(, got 'if'"),
    ("y ~ 'x'", r"strings only as the reference level"),
    ("y ~ C(mechanism, Treatment(reference=f'a'))", r"plain '...' or \"...\" string"),
    ("y ~ eval('1')", r"'eval' at position 4 is not allowed: not an allowed function"),
    ("y ~ open(x)", r"'open' .* not an allowed function"),
    ("y ~ Q('x')", r"'Q' .* not an allowed function"),
    ("y ~ I(C(x))", r"'C' .* inside a function only log/exp/sqrt"),
    ("y ~ C(x, Sum)", r"'Sum' .* Treatment\(reference="),
    ("y ~ x[0]", r"'\[' .* no subscripts"),
    ("y ~ x # comment", r"no comments"),
    ("y ~ x; import os", r"';' at position 5 is not allowed"),
    ("y ~ 0x1F", r"only decimal numbers"),
    ("y ~ x $ z", r"'\$' at position 6 is not allowed"),
    ("y ~ nope", r"unknown column 'nope'"),
    ("y ~ (x", r"unbalanced parentheses"),
    ("y ~ x ~ z", r"exactly one '~'"),
    ("~ x", r"the outcome is missing"),
    ("y ~ x\n+ z", r"one line"),
])
def test_refused_formulas_name_the_token_in_one_line(text, match):
    with pytest.raises(ValueError, match=match) as err:
        formula.validate(text, COLUMNS)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^regress: formula .*columns: collective, y") as err:
        analysis.regress(text, _data())
    assert "\n" not in str(err.value)


def test_allowed_formulas_fit_as_statsmodels_does():
    df = _data()
    for text in ["y ~ x + C(mechanism)", "np.log(y - y.min() + 1) ~ x",
                 "y ~ I(x * 100 + z ** 2) - 1", "y ~ 0 + x", "y ~ (x + z) ** 2",
                 "y ~ x:z + center(x) + standardize(np.sqrt(x))", "y ~ log(x) + exp(-x)",
                 "y ~ C(mechanism, Treatment(reference='us_federal'))",
                 'y ~ C(seed, Treatment(3)) + x']:
        if "y.min()" in text:  # attribute calls are refused: write the number instead
            with pytest.raises(ValueError, match="attribute access"):
                analysis.regress(text, df)
            text = f"np.log(y - {df.y.min():.6f} + 1) ~ x"
        fit = analysis.regress(text, df, cluster="seed", bootstrap=False)
        plain = re.sub(r"(?<![.\w])(log|exp|sqrt)\(", r"np.\1(", text)  # for smf.ols
        ref = smf.ols(plain, df).fit(cov_type="cluster", cov_kwds={"groups": df.seed},
                                     use_t=True)
        np.testing.assert_allclose(fit.result.params, ref.params, rtol=1e-9)
        np.testing.assert_allclose(fit.result.bse, ref.bse, rtol=1e-9)


def test_patsy_only_sees_the_allowed_names(monkeypatch):
    ns = formula.namespace()
    assert set(ns) == {"log", "exp", "sqrt", "np"}
    assert set(vars(ns["np"])) == {"log", "exp", "sqrt"}  # no np.load, np.lib, ...
    # and patsy gets only that namespace: with the validator out of the way, a name of the
    # caller's scope (here, of analysis' module or this test) or real numpy does not resolve
    monkeypatch.setattr(formula, "validate", lambda text, columns: text)
    monkeypatch.setattr(analysis, "leaked", 1.0, raising=False)
    leaked = 1.0  # noqa: F841 (a local of the caller)
    df = _data()
    assert analysis.regress("y ~ I(x + 1.0)", df, bootstrap=False).nobs == len(df)
    for text, match in [("y ~ I(x + leaked)", "unknown column 'leaked'"),
                        ("y ~ I(x + formula_mod.MAX_LENGTH)", "unknown column 'formula_mod'"),
                        ("y ~ I(x + len(frame))", "unknown column 'frame'"),
                        ("y ~ I(x + np.pi)", "has no attribute 'pi'")]:
        with pytest.raises(ValueError, match=match):
            analysis.regress(text, df, bootstrap=False)


@pytest.mark.parametrize(("text", "match"), [
    ("y ~ I(seed + 9**9**9**9)", r"'\*\*' at position 17 .* a power of a power"),
    ("y ~ I(seed + 10**10**8)", r"a power of a power"),
    ("y ~ I((x ** 2) ** 3)", r"a power of an expression with a power in it"),
    ("y ~ I(exp(x ** 2) ** 2)", r"a power of an expression with a power in it"),
    ("y ~ (x + z) ** 2 ** 2", r"a power of a power"),
    ("y ~ I(2 ** x)", r"'x' .* the exponent of \*\* must be a number literal"),
    ("y ~ I(x ** 11)", r"'11' .* exponent of \*\* is at most 10"),
    ("y ~ I(x ** (1 / 2))", r"exponent of \*\* must be a number literal"),
    ("y ~ I(seed + 10000000)", r"'10000000' .* numbers are at most 1,000,000"),
    ("y ~ I(x * 1e999)", r"numbers are at most 1,000,000"),
    ("y ~ " + "(" * 21 + "x" + ")" * 21, r"parentheses are nested more than 20 deep"),
    ("y ~ I(" + "(" * 340 + "seed" + ")" * 340 + ")", r"nested more than 20 deep"),
    ("y ~ " + " + ".join(["x"] * 200), r"has 401 tokens \(at most 300"),
])
def test_formulas_that_would_hang_patsy_or_the_stack_are_refused(text, match):
    """`I(seed + 9**9**9**9)` made patsy compute the integer (100 % CPU until killed); 340
    nested parentheses or a long chain of '+' overflowed the stack (RecursionError)."""
    with pytest.raises(ValueError, match=match) as err:
        formula.validate(text, COLUMNS)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^regress: formula .*" + match):
        analysis.regress(text, _data())


def test_small_powers_and_numbers_still_fit():
    df = _data()
    for text in ["y ~ I(x ** 2) + I(x ** -1) + I(x ** 0.5)", "y ~ (x + z) ** 2",
                 "y ~ I(x * 1000000) + I(z / 1e-3)", "y ~ x ** 2 + I(x ** 2 * z ** 2)",
                 "y ~ " + "(" * 20 + "x" + ")" * 20, "y ~ " + " + ".join(["x"] * 149)]:
        assert analysis.regress(text, df, cluster=None).nobs == len(df), text
    # a reference level is a label, never computed with: any number may name it
    big = df.assign(seed=df.seed + 4_000_000_000)
    fit = analysis.regress("y ~ C(seed, Treatment(4000000005)) + x", big, cluster=None)
    assert "C(seed, Treatment(4000000005))[T.4000000000]" in fit.result.params


_ALPHABET = st.sampled_from(
    [*COLUMNS, "np", "os", "log", "I", "C", "Treatment", "reference", "__import__", "lambda",
     "eval", "center", " ", "~", "+", "-", "*", "/", ":", "**", "(", ")", ",", ".", "=", "[",
     "]", "'a'", '"us_federal"', "1", "0.5", "1e3", "#", ";", "@", "\\", "\n", "{", "}"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, min_size=1, max_size=14))
def test_any_text_is_refused_in_one_line_or_names_only_allowed_things(parts):
    text = "".join(parts)
    try:
        formula.validate(text, COLUMNS)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    names, _ = formula.columns_used(text, COLUMNS)
    code = re.sub(r"'[^']*'|\"[^\"]*\"", "", text)  # string literals: reference levels
    words = set(re.findall(r"[A-Za-z_]\w*", code))
    allowed = {*COLUMNS, "np", "log", "exp", "sqrt", "I", "C", "Treatment", "reference",
               "center", "standardize"}
    assert words <= allowed, words - allowed
    assert not {"__import__", "os", "eval", "lambda"} & words and set(names) <= set(COLUMNS)
    try:  # an accepted formula fits or gives a one-line error (e.g. a singular design)
        analysis.regress(text, _data(), cluster="seed", bootstrap=False)
    except ValueError as err:
        assert "\n" not in str(err)
