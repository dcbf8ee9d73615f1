"""`econsim` never shows a traceback: bad input is one `econsim: error:` line with exit 2
(argparse errors too), anything unexpected one `internal error` line with exit 1 (the
traceback with ECONSIM_DEBUG=1); an interruption hints at --resume only for `run`; nothing is
written on a refusal."""

import os
import signal
import subprocess
import sys

import pytest

from econsim import cli, runner
from tests.reference import small


def _main(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line(code, err, expect_code=2):
    assert code == expect_code, err
    assert err.count("\n") == 1 and err.startswith("econsim: error: "), err
    assert "Traceback" not in err and "usage:" not in err


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runner.run(small("ipd_pg", 2), seeds=[0], progress=False, root=root, run_id="r")
    return root


# ------------------------------------------------------------------------------ argparse


@pytest.mark.parametrize("argv, message", [
    (["run", "ipd_pg", "--iterations", "abc"], "argument --iterations: invalid int value"),
    (["sweep", "ipd_pg", "--backend", "nope"], "argument --backend: invalid choice"),
    (["run"], "the following arguments are required: scenario"),
    ([], "the following arguments are required: command"),
    (["nope"], "invalid choice: 'nope'"),
    (["list", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_argparse_errors_are_one_line(tmp_path, capsys, argv, message):
    code, out, err = _main(capsys, "--root", tmp_path / "runs", *argv)
    _one_line(code, err)
    assert message in err and not out
    assert not (tmp_path / "runs").exists()


def test_help_still_prints_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--help"])
    assert exit_.value.code == 0 and "--resume" in capsys.readouterr().out


# ------------------------------------------------------------------------------ --seeds


@pytest.mark.parametrize("text", ["1-", "", "-1", "5-3", "٣", "1,,2", "0-x", "1 2", "²",
                                  "0,0", "4294967296", "0-99999999999", ",".join(["1"] * 70)])
def test_bad_seeds_are_refused(tmp_path, capsys, text):
    code, _, err = _main(capsys, "--root", tmp_path / "runs", "run", "ipd_pg", "--seeds", text,
                         "--quiet")
    _one_line(code, err)
    assert err.startswith("econsim: error: --seeds: "), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, message", [
    ("r", "is not RUN_ID@ITERATION"), ("r@", "is not RUN_ID@ITERATION"),
    ("@2", "is not RUN_ID@ITERATION"), ("r@²", "is not RUN_ID@ITERATION"),
    ("r@1", "kept no checkpoint at iteration 1 (kept: none (train.keep_every was 0))"),
    ("gone@1", "fork: run 'gone' not found"),
])
def test_bad_forks_are_refused(stored, capsys, text, message):
    before = sorted(p.name for p in stored.iterdir())
    code, _, err = _main(capsys, "--root", stored, "run", "ipd_pg", "--fork", text, "--quiet")
    _one_line(code, err)
    assert message in err
    assert sorted(p.name for p in stored.iterdir()) == before


def test_good_seeds_parse():
    assert cli.parse_seeds("0-2,5") == [0, 1, 2, 5]
    assert cli.parse_seeds(" 7 ") == [7]
    assert cli.parse_seeds("4294967295") == [2**32 - 1]


# ------------------------------------------------------------------------------ paths


def test_a_scenario_name_too_long_for_a_file_name(tmp_path, capsys):
    for command in ("run", "sweep"):
        code, _, err = _main(capsys, "--root", tmp_path / "runs", command, "a" * 5000)
        _one_line(code, err)
        assert "no such scenario file" in err and len(err) < 1000
    assert not (tmp_path / "runs").exists()


def test_a_root_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for argv in (["run", "ipd_pg", "--iterations", "1", "--quiet"],
                 ["sweep", "ipd_pg", "--iterations", "1", "--set", "algorithm.lr=0.1",
                  "--quiet"]):
        code, _, err = _main(capsys, "--root", afile, *argv)
        _one_line(code, err)
        assert "is not a folder" in err
    assert afile.read_text() == "keep"
    code, _, err = _main(capsys, "--root", afile / "sub", "run", "ipd_pg", "--iterations", "1",
                         "--quiet")
    _one_line(code, err)


def test_export_out_that_cannot_be_a_folder(stored, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for out, message in [(afile, "is not a folder"), ("/dev/null", "is not a folder"),
                         ("/proc/nope", "cannot be created"),
                         (tmp_path / ("x" * 300), "cannot be created: File name too long"),
                         (afile / "sub", "cannot be created")]:
        code, out_text, err = _main(capsys, "--root", stored, "export", "r", "--out", out)
        _one_line(code, err)
        assert message in err and not out_text, err
    assert afile.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_export_out_that_is_not_writable(stored, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = _main(capsys, "--root", stored, "export", "r", "--out", locked / "x")
        _one_line(code, err)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_a_failed_export_leaves_nothing_behind(stored, tmp_path, capsys, monkeypatch):
    from econsim import dictionary

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dictionary, "write", disk_full)  # after the tables were written
    out = tmp_path / "new" / "deeper"
    code, _, err = _main(capsys, "--root", stored, "export", "r", "--out", out)
    _one_line(code, err)
    assert "No space left on device" in err
    assert not (tmp_path / "new").exists()
    code, _, err = _main(capsys, "--root", stored, "export", "r")  # the default folder
    _one_line(code, err)
    assert not (stored / "r" / "export").exists()


@pytest.mark.parametrize("out, message", [
    ("{afile}/x.csv", "does not exist"),
    ("/proc/x.csv", "cannot write"),
    ("{tmp}", "is a folder"),
    ("{tmp}/" + "x" * 300 + ".csv", "too long"),
])
def test_regress_out_is_checked_before_any_work(stored, tmp_path, capsys, out, message):
    (tmp_path / "afile").write_text("keep")
    out = out.format(afile=tmp_path / "afile", tmp=tmp_path)
    code, out_text, err = _main(capsys, "--root", stored, "regress", "collective ~ seed",
                                "--out", out)
    _one_line(code, err)
    assert message in err and not out_text, (out_text, err)


# ------------------------------------------------------------------------------ last resort


@pytest.mark.parametrize("error", [KeyError("x"), OverflowError("too big"),
                                   ZeroDivisionError("division by zero"), MemoryError(),
                                   RuntimeError("boom\nsecond line"), RecursionError("deep")])
def test_any_other_error_is_one_internal_line(monkeypatch, capsys, error):
    def broken(args):
        raise error

    monkeypatch.setattr(cli, "cmd_list", broken)
    code, _, err = _main(capsys, "list")
    _one_line(code, err, expect_code=1)
    assert err.startswith(f"econsim: error: internal error: {type(error).__name__}")
    assert err.rstrip().endswith("(set ECONSIM_DEBUG=1 for the traceback)")
    assert "second line" not in err
    monkeypatch.setenv("ECONSIM_DEBUG", "1")
    with pytest.raises(type(error)):
        cli.main(["list"])


def test_the_resume_hint_is_only_for_run(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    for name, command in [("cmd_list", ["list"]), ("cmd_regress", ["regress", "y ~ x"]),
                          ("cmd_export", ["export", "r"])]:
        monkeypatch.setattr(cli, name, interrupted)
        code, _, err = _main(capsys, *command)
        assert code == 130 and err == "econsim: interrupted\n", err
    monkeypatch.setattr(cli, "cmd_run", interrupted)
    code, _, err = _main(capsys, "run", "ipd_pg")
    assert code == 130 and "--resume" in err


@pytest.mark.slow
def test_sigterm_during_regress_gives_no_resume_hint(stored):
    """The probe: SIGTERM during `regress` printed "resume with `econsim run ... --resume`"."""
    code = ("import time, econsim.cli as c\n"
            "def slow(args):\n    time.sleep(60)\n"
            "c.cmd_regress = slow\n"
            "raise SystemExit(c.main(['regress', 'y ~ x']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    import time

    time.sleep(8)  # imports
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    assert proc.stderr.read() == "econsim: interrupted\n"


@pytest.mark.parametrize(("args", "match"), [
    (["bench", "--seconds", "nan"], "--seconds: nan is not allowed"),
    (["bench", "--batch", "0"], "--batch: 0 is not allowed"),
    (["bench", "gtb", "--batch", "1000000"], "--batch: 1,000,000 is not allowed for gtb"),
    (["bench", "nope"], "unknown game 'nope'"),
    (["bench", "ipd", "--rounds", "0"], "--rounds: 0 is not allowed"),
    (["bench", "ipd", "--warmup", "-1"], "--warmup: -1.0 is not allowed"),
    (["bench", "ipd", "--json", "out.csv"], "--json: 'out.csv' is not allowed"),
])
def test_bench_refuses_bad_sizes_in_one_line(args, match, capsys):
    from econsim import cli

    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1
