"""Every scenario value is bounded and finite; a bad value or a bad file is refused with one
line (field, value, what is allowed), exit status 2 and nothing written; 0 iterations are
refused, not replaced by the scenario's budget."""

import tomllib
from pathlib import Path

import pytest
import tomli_w
from streamlit.testing.v1 import AppTest

import learners
from econsim import bounds, cli, envs, runner, scenario
from econsim.errors import ScenarioError
from learners.pg import LinearSchedule
from mechanisms import registry

# ------------------------------------------------------------------------------ every field


def _models() -> dict[str, type]:
    """Every pydantic model a scenario file fills in."""
    found = [scenario.Scenario, scenario.TrainSpec, LinearSchedule, *registry.PARAMS.values()]
    found += [envs.params_model(e) for e in envs.names()]
    found += [learners.trainer_class(a).Config for a in learners.algorithm_names()]
    return {f"{m.__module__}.{m.__qualname__}": m for m in found}


# free tables of a Scenario, validated by the env's, algorithm's and mechanism's own models
FREE = {("Scenario", "env"), ("Scenario", "algorithm"), ("Scenario", "mechanism")}
# tax rates: finite by the model, in [0, 1] by mechanisms.tax.check_schedule (see below)
RATES = {("FlatParams", "rate"), ("CustomParams", "rates"), ("SaezParams", "initial_rates")}


def _unbounded(node: dict, path: str) -> list[str]:
    """What is unbounded in the JSON schema ``node`` of a field (nested models are checked
    on their own)."""
    if "$ref" in node or "enum" in node or "const" in node:
        return []
    if "anyOf" in node:
        return [p for n in node["anyOf"] for p in _unbounded(n, path)]
    kind = node.get("type")
    if kind in ("null", "boolean"):
        return []
    if kind in ("number", "integer"):
        low = {"minimum", "exclusiveMinimum"} & node.keys()
        high = {"maximum", "exclusiveMaximum"} & node.keys()
        return [] if low and high else [f"{path}: a {kind} without a lower and upper bound"]
    if kind == "string":
        return [] if "maxLength" in node else [f"{path}: a string without a maximum length"]
    if kind == "array":
        bad = [] if "maxItems" in node else [f"{path}: an array without a maximum length"]
        for i, item in enumerate(node.get("prefixItems", [])):
            bad += _unbounded(item, f"{path}.{i}")
        if isinstance(node.get("items"), dict):
            bad += _unbounded(node["items"], f"{path}[]")
        return bad
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        bad = [] if "maxProperties" in node else [f"{path}: a table without a maximum size"]
        return bad + _unbounded(node["additionalProperties"], f"{path}.*")
    return [f"{path}: unexpected schema {node}"]


@pytest.mark.parametrize("name", sorted(_models()))
def test_every_scenario_field_is_bounded_and_finite(name):
    model = _models()[name]
    assert model.model_config.get("allow_inf_nan") is False, "NaN/inf must be refused"
    assert model.model_config.get("extra") == "forbid"
    schema = model.model_json_schema()
    problems = [p for field, node in schema["properties"].items()
                if (model.__name__, field) not in FREE | RATES for p in _unbounded(node, field)]
    assert not problems, problems


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "flat", "rate": 1.5}, "mechanism: rates must lie in [0, 1], got 1.5 at bracket 0"),
    ({"name": "flat", "rate": 1e308}, "mechanism: rates must lie in [0, 1], got 1e+308"),
    ({"name": "flat", "rate": float("inf")}, "mechanism.rate: inf is not allowed: Input should "
     "be a finite number"),
    ({"name": "custom", "thresholds": [0, 1], "rates": [0.1, -1]}, "mechanism: rates must lie "
     "in [0, 1], got -1.0 at bracket 1"),
    ({"name": "saez", "initial_rates": [2.0] * 7}, "mechanism: rates must lie in [0, 1]"),
])
def test_tax_rates_are_bounded_by_the_schedule_check(spec, message):
    with pytest.raises(ValueError) as err:
        registry.build(spec)
    assert str(err.value).startswith(message), str(err.value)


# ------------------------------------------------------------------------------ bad values

BASE = tomllib.loads((scenario.SCENARIO_DIR / "er21_lio.toml").read_text())
GTB = tomllib.loads((scenario.SCENARIO_DIR / "gtb_us_federal.toml").read_text())
PGD = tomllib.loads((scenario.SCENARIO_DIR / "er21_pgd.toml").read_text())
CLEANUP_LIO = tomllib.loads((scenario.SCENARIO_DIR / "cleanup7_lio.toml").read_text())


def _patched(base: dict, path: str, value) -> dict:
    """``base`` (deep-copied through TOML) with the dotted ``path`` set to ``value``."""
    data = tomllib.loads(tomli_w.dumps(base))
    *tables, key = path.split(".")
    node = data
    for t in tables:
        node = node.setdefault(t, {})
    node[key] = value
    return data


BAD = [  # (base, dotted path, value, what the one-line message must contain)
    (BASE, "algorithm.lr", 1e308, "algorithm.lr: 1e+308 is not allowed: Input should be less "
     "than or equal to 10"),
    (BASE, "algorithm.lr", float("inf"), "inf is not allowed: numbers must be finite"),
    (BASE, "algorithm.entropy", float("nan"), "algorithm.entropy: nan is not allowed: numbers "
     "must be finite"),
    (BASE, "algorithm.cost", 1e7, "algorithm.cost: 10000000.0 is not allowed: Input should be "
     "less than or equal to 1000000"),
    (BASE, "algorithm.r_max", -2.0, "algorithm.r_max: -2.0 is not allowed: Input should be "
     "greater than 0"),
    (BASE, "algorithm.hidden", [10**6], "algorithm.hidden.0: 1000000 is not allowed: Input "
     "should be less than or equal to 4096"),
    (BASE, "algorithm.hidden", [8] * 9, "algorithm.hidden: [8, 8, 8, 8, 8, 8, 8, 8, 8] is not "
     "allowed: List should have at most 8 items"),
    (BASE, "algorithm.batch", 10**6, "algorithm.batch: 1000000 is not allowed: Input should "
     "be less than or equal to 4096"),
    (BASE, "algorithm.epsilon", {"start": 0.5, "end": 0.1, "steps": 10**12},
     "algorithm.epsilon.steps: 1000000000000 is not allowed"),
    (BASE, "env.max_steps", 10**4, "env.max_steps: 10000 is not allowed: Input should be "
     "less than or equal to 1000"),
    (BASE, "env.n_agents", 10**4, "env.n_agents: 10000 is not allowed: Input should be less "
     "than or equal to 100"),
    (BASE, "seeds", [2**32], "seeds.0: 4294967296 is not allowed: Input should be less than "
     "4294967296"),
    (BASE, "seeds", [-1], "seeds.0: -1 is not allowed: Input should be greater than or equal "
     "to 0"),
    (BASE, "seeds", list(range(65)), "seeds: [0, 1, 2,"),
    (BASE, "seeds", [3, 3], "seeds: [3, 3] is not allowed: seeds must be distinct"),
    (BASE, "name", "x" * 65, "name: 'xxxxx"),
    (BASE, "name", "-rf", "name: '-rf' is not allowed: a scenario name is a plain name"),
    (BASE, "name", "..", "name: '..' is not allowed: a scenario name is a plain name"),
    (BASE, "name", "a/b", "name: 'a/b' is not allowed: a scenario name is a plain name"),
    (BASE, "description", "d" * 2001, "String should have at most 2000 characters"),
    (BASE, "train.iterations", 0, "train.iterations: 0 is not allowed: Input should be greater "
     "than or equal to 1"),
    (BASE, "train.iterations", 10**12, "train.iterations: 1000000000000 is not allowed"),
    (BASE, "train.eval_every", 0, "train.eval_every: 0 is not allowed"),
    (BASE, "train.log_every", -5, "train.log_every: -5 is not allowed"),
    (BASE, "train.checkpoint_every", 10**12, "train.checkpoint_every: 1000000000000 is not "
     "allowed"),
    (BASE, "train.eval_episodes", 10**6, "train.eval_episodes: 1000000 is not allowed: Input "
     "should be less than or equal to 10000"),
    (BASE, "bogus", float("-inf"), "bogus: -inf is not allowed: numbers must be finite"),
    (BASE, "algorithm.incentive_hidden", [16, 0], "algorithm.incentive_hidden.1: 0 is not "
     "allowed"),
    (GTB, "env.period_length", 10**6, "env.period_length: 1000000 is not allowed"),
    (GTB, "env.tax_rates", [0.1] * 6 + [float("nan")], "env.tax_rates.6: nan is not allowed"),
    (GTB, "env.eta", 1.0, "env.eta: 1.0 is not allowed: Input should be less than 1"),
    # agents an algorithm cannot take: LIO needs someone to incentivise; give-reward bits
    (CLEANUP_LIO, "env.n_agents", 1, "env.n_agents: 1 is not allowed: algorithm 'lio-ac' "
     "takes 2 to 63 agents"),
    (BASE, "env.n_agents", 64, "env.n_agents: 64 is not allowed: algorithm 'lio' takes 2 to "
     "63 agents"),
    (PGD, "env.n_agents", 12, "env.n_agents: 12 is not allowed: a pg-d agent chooses among 3 "
     "actions x 2^11 give bits = 6,144 outputs (allowed: at most 4,096"),
    (PGD, "env.n_agents", 11, None),  # 3 x 2^10 = 3072 outputs
    (GTB, "algorithm.minibatches", 10**9, "algorithm.minibatches: 1000000000 is not allowed"),
    (GTB, "algorithm.epochs", 10**4, "algorithm.epochs: 10000 is not allowed"),
    (GTB, "mechanism", {"name": "saez", "min_tail": float("inf")}, "mechanism.min_tail: inf "
     "is not allowed: numbers must be finite"),
    (GTB, "mechanism", {"name": "saez", "buffer_size": 10**12}, "mechanism.buffer_size: "
     "1000000000000 is not allowed: Input should be less than or equal to 100000000"),
    (GTB, "mechanism", {"name": "flat", "rate": float("nan")}, "mechanism.rate: nan is not "
     "allowed"),
    # a custom schedule on other brackets than the game's is refused when validating
    (GTB, "mechanism", {"name": "custom", "thresholds": [0, 10], "rates": [0.1, 0.2]},
     "mechanism.thresholds: brackets [0.0, 10.0] are not allowed: the schedule must use the "
     "game's brackets, env.tax_cutoffs = [0.0, 9.7, 39.475"),
    (GTB, "mechanism", {"name": "us_federal"}, None),  # valid: the same brackets
    (GTB, "mechanism", {}, "mechanism.name: required field is missing (allowed: us_federal"),
    # many values at once: one evaluation would hold 3 x 10000 x 100 x 4 x 1200 observations
    (GTB, "train.eval_episodes", 10_000, "train.eval_episodes: 10000 is not allowed: 3 seeds x "
     "10000 episodes x 100 steps x 4 agents x 1200 observation values = 14,400,000,000 values "
     "at once (allowed: at most 1,073,741,824"),
]


def _id(case) -> str:
    return f"{case[1]}={str(case[2])[:20]}"


@pytest.mark.parametrize(("base", "path", "value", "message"), BAD, ids=map(_id, BAD))
def test_bad_values_are_refused_with_one_line(base, path, value, message):
    data = _patched(base, path, value)
    if message is None:
        scenario.from_dict(data, "x.toml")
        return
    with pytest.raises(ScenarioError) as err:
        scenario.from_dict(data, "x.toml")
    text = str(err.value)
    assert "\n" not in text and text.startswith("x.toml: ")
    assert message in text, text


SENTINEL = 123456.789


def _toml_text(data: dict, path: str | None = None, literal: str | None = None) -> str:
    """``data`` as TOML; with ``path``, that key's value is written as the TOML ``literal``
    (e.g. ``nan`` or ``inf``, which tomli_w does not write)."""
    if path is None:
        return tomli_w.dumps(data)
    text = tomli_w.dumps(_patched(data, path, SENTINEL))
    assert text.count(str(SENTINEL)) == 1
    return text.replace(str(SENTINEL), literal)


def _cli(tmp_path: Path, capsys, file: Path, *extra: str) -> tuple[int, str]:
    root = tmp_path / "runs"
    code = cli.main(["--root", str(root), "run", str(file), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(("path", "literal", "message"), [
    ("algorithm.lr", "inf", "algorithm.lr: inf is not allowed: numbers must be finite"),
    ("algorithm.lr", "1e308", "algorithm.lr: 1e+308 is not allowed"),
    ("algorithm.entropy", "nan", "algorithm.entropy: nan is not allowed"),
    ("train.eval_episodes", "-inf", "train.eval_episodes: -inf is not allowed"),
    ("seeds", "[0, 4294967296]", "seeds.1: 4294967296 is not allowed"),
    ("description", '"' + "x" * 3000 + '"', "description: 'xxx"),
])
def test_cli_refuses_bad_values_with_exit_2_and_writes_nothing(tmp_path, capsys, path,
                                                              literal, message):
    file = tmp_path / "bad.toml"
    file.write_text(_toml_text(BASE, path, literal))
    code, err = _cli(tmp_path, capsys, file)
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("econsim: error: bad.toml: ") and message in err, err
    assert len(err) < 400
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------ bad files


def test_deeply_nested_toml_is_refused_before_parsing(tmp_path, capsys):
    for i, text in enumerate([
        "x = " + "[" * 100_000 + "]" * 100_000 + "\n",  # a RecursionError in tomllib today
        "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
        "[" + ".".join(["a"] * 50) + "]\nb = 1\n",  # dotted keys nest without brackets
        "x = [[[[[[[[[1]]]]]]]]]\n",  # 9 levels
    ]):
        file = tmp_path / f"deep{i}.toml"
        file.write_text(text)
        code, err = _cli(tmp_path, capsys, file)
        assert code == 2 and "\n" not in err, err
        assert err.startswith(f"econsim: error: deep{i}.toml: ")
        assert "nest more than 8 deep (allowed: at most 8)" in err, err
    assert not (tmp_path / "runs").exists()


def test_brackets_in_strings_and_comments_do_not_count_as_nesting():
    text = "x = '[[[[[[[[[[\\'\n# [[[[[[[[[[[[[[[[[[[[ # [[[[[[[[[[\n" + _toml_text(BASE).replace(
        'description = "', 'description = "[[[[[[[[[[[[{{{{{{{{{{ \\" [[[[[[[[[[')
    data = scenario.parse_text(text, "ok.toml")
    assert data["description"].startswith("[[[[[[[[[[[[") and data["x"] == "[[[[[[[[[[\\"


def test_huge_non_utf8_and_unreadable_files_are_refused_naming_the_file(tmp_path, capsys):
    huge = tmp_path / "huge.toml"
    huge.write_text(_toml_text(BASE) + "# " + "x" * 2_000_000 + "\n")
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(_toml_text(BASE).encode() + 'x = "é"\n'.encode("latin-1"))
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    for file, message in [
        (huge, "huge.toml: a file larger than 1,000,000 bytes is not allowed"),
        (latin, "latin1.toml: not UTF-8 text (byte 0xe9 at offset"),
        (folder, "folder.toml: no such scenario file"),
    ]:
        code, err = _cli(tmp_path, capsys, file)
        assert code == 2 and "\n" not in err and message in err, err
    assert not (tmp_path / "runs").exists()
    bom = tmp_path / "bom.toml"  # a byte-order mark (Windows editors) is fine
    bom.write_bytes(b"\xef\xbb\xbf" + _toml_text(BASE).encode())
    assert scenario.load(bom).name == BASE["name"]


def test_a_key_with_a_newline_still_gives_one_line(tmp_path, capsys):
    file = tmp_path / "key.toml"
    file.write_text(_toml_text(BASE) + '"evil\\nline" = 1\n')
    code, err = _cli(tmp_path, capsys, file)
    assert code == 2 and "\n" not in err and "evil\\nline: unknown field" in err, err


# ------------------------------------------------------------------------------ iterations


def test_zero_iterations_are_refused_not_replaced(tmp_path, capsys):
    code, err = _cli(tmp_path, capsys, scenario.find("ipd_pg"), "--iterations", "0")
    assert code == 2 and "\n" not in err
    assert err == ("econsim: error: iterations: 0 is not allowed: Input should be greater "
                   "than or equal to 1"), err
    assert not (tmp_path / "runs").exists()
    for bad in (0, -3, 10**12):
        with pytest.raises(ScenarioError, match=rf"^iterations: {bad} is not allowed"):
            runner.run("ipd_pg", iterations=bad, progress=False, root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    assert scenario.budget(scenario.load("ipd_pg")) == 20000
    assert scenario.budget(scenario.load("ipd_pg"), 7) == 7


def test_seeds_on_the_command_line_are_bounded(tmp_path, capsys):
    for seeds, message in [("0-99999999999", "at most 64 seeds"),
                           ("4294967296", "seeds must be distinct integers in [0, 2^32)")]:
        code, err = _cli(tmp_path, capsys, scenario.find("ipd_pg"), "--seeds", seeds)
        assert code == 2 and message in err, err
    assert not (tmp_path / "runs").exists()
    assert cli.parse_seeds("0-63") == list(range(bounds.MAX_SEEDS))


# ------------------------------------------------------------------------------ the app


APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.mark.parametrize(("act", "message"), [
    (lambda at: at.file_uploader(key="b_upload").upload(
        "latin.toml", 'name = "é"\n'.encode("latin-1"), "application/toml").run(),
     "latin.toml: not UTF-8 text (byte 0xe9 at offset 8)"),
    (lambda at: (at.text_area(key="b_paste").input("x = " + "[" * 5000 + "]" * 5000).run(),
                 at.button(key="b_load_paste").click().run()),
     "pasted TOML: arrays or tables nest more than 8 deep"),
    (lambda at: at.text_area(key="b_alg_params").input("lr = inf").run(),
     "scenario: algorithm.lr: inf is not allowed: numbers must be finite"),
    (lambda at: at.text_area(key="b_env_params").input("x = " + "[" * 5000 + "]" * 5000).run(),
     "game parameters: arrays or tables nest more than 8 deep"),
], ids=["non-UTF-8 upload", "deep paste", "infinite learning rate", "deep game parameters"])
def test_builder_validates_like_the_cli(monkeypatch, tmp_path, act, message):
    monkeypatch.setenv("ECONSIM_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page("econsim/app_pages/builder.py").run()  # the start page opens first
    act(at)
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(message), errors
    assert "\n" not in errors[0]
