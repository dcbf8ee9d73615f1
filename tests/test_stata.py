"""Stata exports (econsim.stata): labelled .dta files that round-trip with pandas, and the zip
of everything."""

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from econsim import stata, whatif


@pytest.fixture(scope="module")
def res():
    return whatif.compare(["us_federal", {"name": "flat", "rate": 0.3}], "gtb_free_market",
                          episodes=1, seeds=[0, 1])


def read(data: bytes) -> tuple[pd.DataFrame, dict[str, str]]:
    with pd.io.stata.StataReader(io.BytesIO(data)) as reader:
        frame = reader.read()
        labels = reader.variable_labels()
    return frame, labels


def test_dta_round_trips_with_labels_from_the_data_dictionary(res):
    ep = res.episodes
    frame, labels = read(stata.dta_bytes(ep, "episodes"))
    assert list(frame.columns) == list(ep.columns)  # every name already a Stata name
    for col in ("welfare_sum", "productivity", "utilitarian", "tax_revenue"):
        np.testing.assert_allclose(frame[col].to_numpy(), ep[col].to_numpy())
    assert list(frame.mechanism) == list(ep.mechanism)
    assert labels["welfare_sum"].startswith("sum over the episode's steps of productivity")
    assert labels["welfare_sum"].endswith("... [coin x share x steps]")
    assert labels["equality"].endswith("[share]")
    assert all(len(v) <= 80 for v in labels.values())
    periods, plabels = read(stata.dta_bytes(res.periods, "periods"))
    assert len(periods) == len(res.periods) and plabels["skill"].endswith("[coin/house]")


def test_odd_names_infinities_booleans_and_missing_text_are_handled_openly():
    df = pd.DataFrame({"nash": [1.0, -np.inf], "2nd score": [1, 2], "flag": [True, False],
                       "note": ["a", None], "x" * 40: [0.5, 0.25], "big": [2**40, 1]})
    frame, labels = read(stata.dta_bytes(df, "episodes"))
    assert list(frame.columns) == ["nash", "v_2nd_score", "flag", "note", "x" * 32, "big"]
    assert frame.nash.isna().tolist() == [False, True]
    assert labels["nash"].endswith("(inf as missing)")
    assert labels["v_2nd_score"].startswith("2nd score")
    assert frame.flag.tolist() == [1, 0] and frame.note.tolist() == ["a", ""]
    assert frame.big.tolist() == [2.0**40, 1.0]
    assert stata.stata_names(["a.b", "a_b", "A_B"]) == {"a.b": "a_b", "a_b": "a_b_1",
                                                        "A_B": "A_B_2"}


def test_bundle_holds_every_table_the_dictionary_and_the_scenario(res):
    data = stata.bundle(res.tables(), "whatif-gtb", scenario_toml="name = 'x'\n",
                        readme="how to rerun")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        for t in ("periods", "episodes", "steps", "world"):
            assert {f"whatif-gtb-{t}.csv", f"whatif-gtb-{t}.dta"} <= names
        assert {"whatif-gtb-dictionary.csv", "whatif-gtb-scenario.toml", "README.txt"} <= names
        d = pd.read_csv(z.open("whatif-gtb-dictionary.csv"))
        assert set(d.table) == {"periods", "episodes", "steps", "world"}
        ep = pd.read_stata(z.open("whatif-gtb-episodes.dta"))
        assert len(ep) == len(res.episodes)
