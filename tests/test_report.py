"""The one-file HTML report of a what-if (econsim.report)."""

import re

import pytest

from econsim import report, whatif


@pytest.fixture(scope="module")
def res():
    return whatif.compare(["us_federal", {"name": "flat", "rate": 0.3}], "gtb_free_market",
                          episodes=1, seeds=[0, 1, 2])


def test_report_holds_the_run_results_plots_versions_and_rerun_code(res):
    page = report.whatif_report(res, baseline="flat(rate=0.3)")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    assert "<script" not in page and "http" not in page  # one file, nothing to fetch
    # outcomes, trade-off, Lorenz, incomes before/after, incidence by decile, T(z) + marginal
    assert page.count("data:image/png;base64,") == 6
    assert "Tax incidence by income decile" in page and "marginal rate" in page
    conf = res.confidence(["welfare_sum"]).set_index("mechanism")
    assert f"{conf.loc['us_federal', 'mean']:.3f}".rstrip("0") in page
    assert "Paired differences to flat(rate=0.3)" in page
    for v in report.versions().values():
        assert v in page
    assert "whatif.WhatIfJob.create(sc, [{&#x27;name&#x27;: &#x27;us_federal&#x27;}" in page
    assert "scripted workers" in page and "Seeds: 0, 1, 2" in page


def test_report_escapes_text_and_refuses_bad_input(res):
    page = report.whatif_report(res, title="<script>alert(1)</script>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    with pytest.raises(ValueError, match="baseline 'x' is not among the mechanisms"):
        report.whatif_report(res, baseline="x")
    assert re.search(r"<h1>&lt;script&gt;", page)
