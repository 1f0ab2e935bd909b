"""The README's quick-reference block is generated from benchmarks/figures.json, never typed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quickref():
    spec = importlib.util.spec_from_file_location("quickref", ROOT / "benchmarks" / "quickref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_block_is_the_rendering_of_the_recorded_figures(quickref):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = quickref.render(quickref.load())
    assert block in text, "README quick reference is stale: run python benchmarks/quickref.py write"
    assert quickref.main(["check"]) == 0


def test_every_number_in_the_block_comes_from_the_record(quickref):
    """Render a record with distinctive values: each appears, and an empty record says so."""
    empty = quickref.render({})
    assert empty.count(quickref.NOT_MEASURED) == 6
    prov = {"date": "2026-01-02", "commit": "abc1234", "cores": 2, "load_1min": 0.5}
    data = {
        "make_test": {"venv_s": 111, "pytest_s": 222, "provenance": prov},
        "make_run": {
            "venv_s": 100, "run_s": 1000, "jobs": 77, "peak_rss_mb": 432.0,
            "peak_job": "rule/job", "provenance": prov,
        },
        "prior_logpdf": {
            "rows": [
                {"kind": k, "dim": 7, "latency_ms": lat, "points_per_s": pts}
                for k, lat, pts in (("nsf", 0.41, 123_000), ("maf", 0.07, 2_340_000),
                                    ("realnvp", 0.06, 3_450_000))
            ],
            "provenance": prov,
        },
        "train_real": {
            "rows": [{"chain": "DES", "dim": 6, "n": 96721, "seconds": 44.0, "gap_nats": 0.004}],
            "provenance": prov,
        },
    }  # fmt: skip
    block = quickref.render(data)
    assert quickref.NOT_MEASURED not in block
    for expected in ("5.5 min (111 s + 222 s)", "18.3 min (100 s + 1000 s, 77 benchmarked jobs)",
                     "432 MB (rule/job)", "0.41 / 0.07 / 0.06 ms", "0.12M / 2.34M / 3.45M",
                     "DES (6-D, 96,721 samples)", "44 s wall, test NLL +0.004 nats",
                     "2026-01-02, commit abc1234, 2 cores, load 0.5"):  # fmt: skip
        assert expected in block, expected


def test_record_merges_atomically_and_keeps_other_keys(quickref, tmp_path):
    path = tmp_path / "figures.json"
    quickref.record("a", {"x": 1}, path=path)
    quickref.record("b", {"y": None}, path=path)
    quickref.record("a", {"x": 2}, path=path)
    data = json.loads(path.read_text())
    assert data["a"]["x"] == 2 and data["b"]["y"] is None
    assert set(data["a"]["provenance"]) == {"date", "commit", "cores", "load_1min"}
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]  # no temporary left


def test_replace_block_needs_exactly_one_pair_of_markers(quickref):
    block = quickref.render({})
    with pytest.raises(ValueError, match="marker"):
        quickref.replace_block("no markers here", block, source="README.md")
    text = f"head\n{quickref.START}\nold\n{quickref.END}\ntail\n"
    assert quickref.replace_block(text, block, source="x") == f"head\n{block}\ntail\n"
