"""Model files: round trip, manifest, atomicity, tamper detection, no pickle."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from flowprior.errors import InputError
from flowprior.io import ModelFileError, load_flow, read_manifest
from flowprior.priors import FlowPrior


@pytest.fixture(params=["model.zip", "model_dir"])
def saved(request, tmp_path, small_result):
    path = tmp_path / request.param
    small_result.save(path)
    return path


def test_round_trip_gives_identical_logpdf_and_rvs(saved, small_result, gauss_chain_2d):
    loaded = FlowPrior.load(saved)
    mem = FlowPrior.from_result(small_result)
    x = gauss_chain_2d.samples[:500]
    np.testing.assert_array_equal(loaded.logpdf(x), mem.logpdf(x))
    np.testing.assert_array_equal(loaded.rvs(300, seed=4), mem.rvs(300, seed=4))
    assert loaded.names == ("p0", "p1")
    np.testing.assert_array_equal(loaded.bounds, [[-5, 5], [-4, 3]])


def test_manifest_records_provenance(saved, small_result, gauss_chain_2d):
    m = read_manifest(saved)
    assert m["format"] == "flowprior-model" and m["format_version"] == 2
    assert [p["name"] for p in m["parameters"]] == ["p0", "p1"]
    assert m["flow"]["kind"] == "maf" and m["flow"]["transforms"] == 2
    assert m["training"]["loss"] == "nll" and m["seed"] == 3
    assert m["data"]["sha256"] == gauss_chain_2d.sha256()
    assert m["data"]["ess"] == pytest.approx(gauss_chain_2d.n)
    assert {"torch", "zuko", "numpy", "flowprior"} <= set(m["versions"])
    assert m["metrics"]["best_val_nll"] == small_result.metrics["best_val_nll"]
    np.testing.assert_allclose(m["standardisation"]["scale"], small_result.flow.scale.numpy())
    assert set(m["files"]) == {"weights.safetensors", "history.csv"}
    assert m["files"]["weights.safetensors"]["size"] > 0
    # wall times are kept out of the digested manifest, in timing.json
    assert "train_seconds" not in json.loads(_entry(saved, "manifest.json"))["metrics"]
    assert m["timing"]["train_seconds"] == small_result.metrics["train_seconds"]
    assert m["metrics"]["train_seconds"] == small_result.metrics["train_seconds"]


def _entry(path, name):
    if path.is_dir():
        return (path / name).read_bytes()
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def test_same_model_same_zip_bytes(tmp_path, small_result):
    from flowprior.io import save_model

    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    small_result.save(a)
    small_result.save(b)
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        for name in ("manifest.json", "model.sha256", "weights.safetensors", "history.csv"):
            assert za.read(name) == zb.read(name)
    c, d = tmp_path / "c.zip", tmp_path / "d.zip"
    save_model(small_result, c, timing=False)
    save_model(small_result, d, timing=False)
    assert c.read_bytes() == d.read_bytes()


def _rewrite_zip(path, name, data):
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    if data is None:
        files.pop(name)
    else:
        files[name] = data
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)


def test_tampered_weights_are_detected(tmp_path, small_result):
    path = tmp_path / "m.zip"
    small_result.save(path)
    with zipfile.ZipFile(path) as zf:
        w = bytearray(zf.read("weights.safetensors"))
    w[-5] ^= 0xFF
    _rewrite_zip(path, "weights.safetensors", bytes(w))
    with pytest.raises(ModelFileError, match="weights.safetensors: SHA-256 does not match"):
        FlowPrior.load(path)


def test_truncated_and_missing_files_are_detected(tmp_path, small_result):
    path = tmp_path / "m"
    small_result.save(path)
    data = (path / "weights.safetensors").read_bytes()
    (path / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="weights.safetensors: .* bytes, the manifest declares"):
        load_flow(path)
    (path / "weights.safetensors").unlink()
    with pytest.raises(ModelFileError, match="weights.safetensors: missing"):
        load_flow(path)


def test_truncated_zip_and_bad_manifest(tmp_path, small_result):
    path = tmp_path / "m.zip"
    small_result.save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="m.zip"):
        load_flow(path)
    # a zip that is no longer recognisable as a model is not replaced
    with pytest.raises(InputError, match="m.zip: exists and is not a flowprior model"):
        small_result.save(path)
    path.unlink()
    small_result.save(path)
    _rewrite_zip(path, "manifest.json", b"{not json")
    with pytest.raises(ModelFileError, match="manifest.json: not valid JSON"):
        load_flow(path)
    path.unlink()
    small_result.save(path)
    with zipfile.ZipFile(path) as zf:
        m = json.loads(zf.read("manifest.json"))
    m["format_version"] = 99
    _rewrite_zip(path, "manifest.json", json.dumps(m).encode())
    with pytest.raises(ModelFileError, match="format_version: 99 is not supported"):
        load_flow(path)
    with pytest.raises(ModelFileError, match="model not found"):
        load_flow(tmp_path / "nope.zip")


def test_failed_save_leaves_nothing_and_keeps_old_model(tmp_path, small_result, monkeypatch):
    import flowprior.io as fio

    path = tmp_path / "m.zip"
    small_result.save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fio, "build_manifest", boom)
    with pytest.raises(RuntimeError):
        small_result.save(path)
    with pytest.raises(RuntimeError):
        small_result.save(tmp_path / "new.zip")
    with pytest.raises(RuntimeError):
        small_result.save(tmp_path / "newdir")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip"]


def test_weights_are_loaded_without_pickle(tmp_path, small_result, monkeypatch):
    import pickle

    path = tmp_path / "m.zip"
    small_result.save(path)

    def forbidden(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    FlowPrior.load(path)


def test_loading_does_not_touch_the_global_rng(saved):
    state = torch.get_rng_state()
    FlowPrior.load(saved)
    assert torch.equal(torch.get_rng_state(), state)
