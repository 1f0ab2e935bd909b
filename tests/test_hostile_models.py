"""Hostile and tampered model files, hostile training weights, deterministic model bytes.

Every hostile model is built inside the test from a freshly saved, valid one. Each case asserts
the exception class, a one-line message naming the model file and the entry or key, that the
model file itself is left byte-identical (loading never writes), and for the bounded-read cases
that no large allocation happens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import flowprior.io as fio
from flowprior.chains import Chain
from flowprior.cli import main
from flowprior.errors import InputError
from flowprior.io import ModelFileError, load_flow, model_fingerprint, read_manifest, save_model
from flowprior.train import TrainConfig, TrainingDivergedError, train_flow

from conftest import make_space

FAST = dict(kind="maf", transforms=1, hidden=(8,), eval_every=10, batch_size=128, progress=False)


# ----------------------------------------------------------------------------- helpers
def _entries(path: Path) -> dict[str, bytes]:
    if path.is_dir():  # never open a FIFO (it would block) or follow a link
        return {
            p.name: (p.read_bytes() if p.is_file() and not p.is_symlink() else p.name.encode())
            for p in sorted(path.iterdir())
        }
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path: Path, entries: dict[str, bytes]) -> None:
    """Write ``entries`` as a model at ``path`` (zip or directory), replacing what is there."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
        return
    for p in path.iterdir():
        p.unlink()
    for name, data in entries.items():
        (path / name).write_bytes(data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _redigest(entries: dict[str, bytes]) -> dict[str, bytes]:
    """What a forger does: recompute the files' hashes and sizes and the manifest digest."""
    m = json.loads(entries["manifest.json"])
    if isinstance(m, dict) and isinstance(m.get("files"), dict):
        for name, rec in m["files"].items():
            if isinstance(rec, dict) and name in entries:
                rec["sha256"], rec["size"] = _sha(entries[name]), len(entries[name])
        entries["manifest.json"] = (json.dumps(m, indent=2, sort_keys=True) + "\n").encode()
    entries["model.sha256"] = f"{_sha(entries['manifest.json'])}  manifest.json\n".encode()
    return entries


@pytest.fixture(params=["m.zip", "m_dir"])
def model(request, tmp_path, small_result) -> Path:
    path = tmp_path / request.param
    small_result.save(path)
    return path


def _snapshot(path: Path) -> dict[str, bytes]:
    return _entries(path) if path.is_dir() else {"": path.read_bytes()}


def _assert_rejected(path: Path, match: str, cls=ModelFileError, *, call=load_flow):
    before = _snapshot(path) if path.exists() else None
    with pytest.raises(cls) as info:
        call(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message, message
    assert __import__("re").search(match, message), message
    if before is not None:
        assert _snapshot(path) == before  # loading never writes
    return message


def _edit_manifest(path: Path, edit, *, redigest: bool) -> None:
    entries = _entries(path)
    m = json.loads(entries["manifest.json"])
    out = edit(m)
    if isinstance(out, bytes):
        entries["manifest.json"] = out
    else:
        entries["manifest.json"] = (json.dumps(m, indent=2, sort_keys=True) + "\n").encode()
    if redigest:
        entries["model.sha256"] = f"{_sha(entries['manifest.json'])}  manifest.json\n".encode()
    _write(path, entries)


def _swap_names(m):
    p = m["parameters"]
    p[0]["name"], p[1]["name"] = p[1]["name"], p[0]["name"]


def _set(keys, value):
    def edit(m):
        d = m
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


# ----------------------------------------------------------------------------- 1. manifest edits
# An edit of the manifest (without a new digest) is detected like an edit of the weights.
MANIFEST_EDITS = {
    "swapped parameter names": _swap_names,
    "flow.eps 0.3": _set(("flow", "eps"), 0.3),
    "flow.eps NaN": lambda m: json.dumps({**m, "flow": {**m["flow"], "eps": float("nan")}}).encode(),
    "seed": _set(("seed",), 4),
    "metrics": _set(("metrics", "best_val_nll"), -99.0),
    "dtype": _set(("flow", "dtype"), "float64"),
    "bounds": _set(("parameters", 0, "upper"), 6.0),
    "label": _set(("parameters", 0, "label"), "x"),
    "standardisation": _set(("standardisation", "shift", 0), 0.0),
    "training.lr": _set(("training", "lr"), 0.5),
    "reformatted only": lambda m: json.dumps(m).encode(),
    "files entry removed": lambda m: m["files"].pop("history.csv"),
}


@pytest.mark.parametrize("edit", list(MANIFEST_EDITS), ids=list(MANIFEST_EDITS))
def test_manifest_edit_is_detected(model, edit):
    _edit_manifest(model, MANIFEST_EDITS[edit], redigest=False)
    _assert_rejected(model, r"manifest\.json: (SHA-256 does not match model\.sha256|not valid JSON)")
    _assert_rejected(model, r"manifest\.json", call=read_manifest)


# ----------------------------------------------------------------------------- 2. strict schema
# A forger who also rewrites model.sha256 still meets the schema: every value is validated.
SCHEMA_CASES = {
    "format_version true": (_set(("format_version",), True), r"format_version: True is not supported"),
    "format_version 1.0": (_set(("format_version",), 1.0), r"format_version: 1\.0 is not supported"),
    "format_version '2'": (_set(("format_version",), "2"), r"format_version: '2'"),
    "format_version 1": (_set(("format_version",), 1), r"format_version: 1 .*retrain"),
    "format other": (_set(("format",), "other"), r"format: not a flowprior-model"),
    "eps 0.3": (_set(("flow", "eps"), 0.3), r"flow\.eps: 0\.3; this version writes exactly 1e-12"),
    "eps as string": (_set(("flow", "eps"), "1e-12"), r"flow\.eps"),
    "eps 1e400 (inf)": (lambda m: json.dumps(m).replace('"eps": 1e-12', '"eps": 1e400').encode(),
                        r"flow\.eps"),
    "NaN literal": (lambda m: json.dumps(m).replace('"eps": 1e-12', '"eps": NaN').encode(),
                    r"not valid JSON \(NaN is not a number"),
    "dtype float16": (_set(("flow", "dtype"), "float16"), r"flow\.dtype: 'float16' is not one of"),
    "kind glow": (_set(("flow", "kind"), "glow"), r"flow\.kind: 'glow'"),
    "transforms huge": (_set(("flow", "transforms"), 10**6), r"flow\.transforms: 1000000 is outside"),
    "transforms bool": (_set(("flow", "transforms"), True), r"flow\.transforms: must be an integer"),
    "transforms 0": (_set(("flow", "transforms"), 0), r"flow\.transforms: must be >= 1"),
    "hidden width huge": (_set(("flow", "hidden"), [10**7, 16]), r"flow\.hidden\[0\]: 10000000"),
    "hidden 200 layers": (_set(("flow", "hidden"), [16] * 200), r"flow\.hidden: 200 layers"),
    "hidden 1.37 GB": (_set(("flow", "hidden"), [8192] * 16), r"flow\.hidden: the architecture needs"),
    "hidden not a list": (_set(("flow", "hidden"), "64"), r"flow\.hidden: expected a list"),
    "bins huge": (_set(("flow", "bins"), 10**6), r"flow\.bins: 1000000 is outside"),
    "dim mismatch": (_set(("flow", "dim"), 3), r"flow\.dim: 3 but 2 parameters"),
    "outer changed": (_set(("flow", "outer"), "identity"), r"flow\.outer"),
    "flow extra key": (_set(("flow", "evil"), 1), r"flow: unknown key\(s\) evil"),
    "parameters empty": (_set(("parameters",), []), r"parameters: expected a list of 1 to"),
    "parameter duplicate name": (_set(("parameters", 1, "name"), "p0"), r"parameters.*p0"),
    "parameter lower > upper": (_set(("parameters", 0, "lower"), 9.0), r"parameters"),
    "parameter bound NaN-free inf": (lambda m: json.dumps(m).replace('"upper": 5.0', '"upper": 1e999').encode(),
                                     r"parameters\[0\]\.upper"),
    "parameter extra key": (_set(("parameters", 0, "evil"), 1), r"parameters\[0\]: unknown key"),
    "parameter name not a string": (_set(("parameters", 0, "name"), 3), r"parameters\[0\]\.name"),
    "bounds differ from weights": (_set(("parameters", 0, "upper"), 6.0), r"parameters: differs from the weights"),
    "shift differs from weights": (_set(("standardisation", "shift", 0), 0.0),
                                   r"standardisation\.shift: differs from the weights"),
    "shift wrong length": (_set(("standardisation", "shift"), [0.0]), r"standardisation\.shift: expected a list of 2"),
    "scale negative": (_set(("standardisation", "scale", 1), -1.0), r"standardisation\.scale\[1\]"),
    "scale matrix for diagonal": (_set(("standardisation", "scale"), [[1.0, 0.0], [0.0, 1.0]]),
                                  r"standardisation\.scale: shape does not match"),
    "space changed": (_set(("standardisation", "space"), "linear"), r"standardisation\.space"),
    "lr a string": (_set(("training", "lr"), "0.001"), r"training\.lr: expected a number"),
    "lr negative": (_set(("training", "lr"), -1.0), r"training: .*lr must be finite and > 0"),
    "training unknown key": (_set(("training", "evil"), 1), r"training: unknown key\(s\) evil"),
    "training kind differs": (_set(("training", "kind"), "nsf"), r"training\.kind: 'nsf' differs"),
    "training progress not bool": (_set(("training", "progress"), 1), r"training\.progress"),
    "seed -1": (_set(("seed",), -1), r"seed: -1 is outside"),
    "seed 2**70": (_set(("seed",), 2**70), r"seed: 1180591620717411303424 is outside"),
    "seed differs from training": (_set(("seed",), 4), r"seed: 4 differs from training\.seed 3"),
    "data sha not hex": (_set(("data", "sha256"), "xyz"), r"data\.sha256: expected a SHA-256"),
    "data n 0": (_set(("data", "n"), 0), r"data\.n: 0 is outside"),
    "data ess > n": (_set(("data", "ess"), 1e9), r"data\.ess"),
    "metric inf": (lambda m: json.dumps(m).replace('"best_step": ', '"best_val_nll_x": 1, "best_step": ').encode(),
                   r"metrics: unknown key\(s\) best_val_nll_x"),
    "metric 1e400": (lambda m: json.dumps({**m, "metrics": {**m["metrics"], "best_val_nll": 0.0}})
                     .replace('"best_val_nll": 0.0', '"best_val_nll": 1e400').encode(),
                     r"metrics\.best_val_nll: inf"),
    "stop_reason unknown": (_set(("metrics", "stop_reason"), "crash"), r"metrics\.stop_reason: 'crash'"),
    "metrics key missing": (lambda m: m["metrics"].pop("steps"), r"metrics: missing key\(s\) steps"),
    "history summary string": (_set(("history_summary", "first_val_nll"), "x"), r"history_summary\.first_val_nll"),
    "versions not strings": (_set(("versions", "torch"), 2), r"versions\.torch"),
    "files: weights entry removed": (lambda m: m["files"].pop("weights.safetensors"),
                                     r"files: missing key\(s\) weights\.safetensors"),
    "files: history entry removed": (lambda m: m["files"].pop("history.csv"),
                                     r"files: missing key\(s\) history\.csv"),
    "files: extra listed": (_set(("files", "evil.txt"), {"sha256": "0" * 64, "size": 1}),
                            r"files: unknown key\(s\) evil\.txt"),
    "files: negative size": (_set(("files", "history.csv", "size"), -1), r"files\.history\.csv\.size"),
    "files: wrong weights hash": (_set(("files", "weights.safetensors", "sha256"), "0" * 64),
                                  r"weights\.safetensors: SHA-256 does not match the manifest"),
    "files: size declared smaller": (_set(("files", "weights.safetensors", "size"), 10),
                                     r"weights\.safetensors: \d+ bytes, the manifest declares 10"),
    "top-level unknown key": (_set(("evil",), 1), r"<manifest>: unknown key\(s\) evil"),
    "top-level key missing": (lambda m: m.pop("data"), r"<manifest>: missing key\(s\) data"),
    "manifest a list": (lambda m: b"[1, 2]", r"format: not a flowprior-model"),
    "duplicate JSON key": (lambda m: b'{"format": "flowprior-model", "format": "x"}',
                           r"not valid JSON \(duplicate key 'format'\)"),
    "200k-deep JSON": (lambda m: b"[" * 200_000 + b"]" * 200_000, r"nested 200000 levels deep"),
    "not UTF-8": (lambda m: b'{"format": "\xff"}', r"not valid JSON"),
}


@pytest.mark.parametrize("case", list(SCHEMA_CASES), ids=list(SCHEMA_CASES))
def test_manifest_schema_is_strict(model, case):
    edit, match = SCHEMA_CASES[case]
    _edit_manifest(model, edit, redigest=True)
    # every case names manifest.json and the key, except the two checks of the weights file
    _assert_rejected(model, match if match.startswith("weights") else r"manifest\.json: " + match)


def test_a_model_written_before_the_degeneracy_check_still_loads(model):
    # training.degeneracy_tolerance came after format 2 files were first written: a file
    # without it loads, with the default (a check before training; the flow is the same)
    _edit_manifest(model, lambda m: m["training"].pop("degeneracy_tolerance"), redigest=True)
    manifest = read_manifest(model)
    assert "degeneracy_tolerance" not in manifest["training"]
    flow = load_flow(model)[0]
    x = torch.zeros((1, 2), dtype=torch.float64)
    assert torch.isfinite(flow.log_prob(x)).all()


def test_oversized_manifest_is_refused_before_reading(model, monkeypatch):
    monkeypatch.setattr(fio, "MAX_MANIFEST_BYTES", 100)
    _assert_rejected(model, r"manifest\.json: \d+ bytes, more than the 100 allowed")


# ----------------------------------------------------------------------------- 3. the digest file
DIGEST_CASES = {
    "missing": (None, r"model\.sha256: missing \(format version 2 requires it\)"),
    "garbage": (b"hello\n", r"model\.sha256: not a '<sha256>  manifest\.json' line"),
    "wrong digest": (b"0" * 64 + b"  manifest.json\n", r"manifest\.json: SHA-256 does not match model\.sha256"),
    "oversized": (b"0" * 10_000, r"model\.sha256: 10000 bytes, more than the 256 allowed"),
}


@pytest.mark.parametrize("case", list(DIGEST_CASES), ids=list(DIGEST_CASES))
def test_digest_file_is_required_and_checked(model, case):
    data, match = DIGEST_CASES[case]
    entries = _entries(model)
    if data is None:
        entries.pop("model.sha256")
    else:
        entries["model.sha256"] = data
    _write(model, entries)
    _assert_rejected(model, match)


def test_removing_a_file_and_its_entry_does_not_switch_its_check_off(model):
    entries = _entries(model)
    entries.pop("history.csv")
    m = json.loads(entries["manifest.json"])
    m["files"].pop("history.csv")
    entries["manifest.json"] = (json.dumps(m, indent=2, sort_keys=True) + "\n").encode()
    _write(model, _redigest(entries))
    _assert_rejected(model, r"files: missing key\(s\) history\.csv")


# ----------------------------------------------------------------------------- 4. zip containers
def _zip_with(path: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]], *, base=None) -> None:
    entries = base if base is not None else _entries(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)


def _symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _set_encrypted_flag(path: Path, name: str) -> None:
    """Set bit 0 (encrypted) of the entry's flags in its local and central headers."""
    raw = bytearray(path.read_bytes())
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (i := raw.find(sig, start)) >= 0:
            if raw[i + name_at : i + name_at + len(name)] == name.encode():
                raw[i + flag_at] |= 0x1
            start = i + 4
    path.write_bytes(bytes(raw))


def _compressed_info(name, method):
    info = zipfile.ZipInfo(name)
    info.compress_type = method
    return info


ZIP_CASES = {
    "duplicate manifest": (lambda e: [("manifest.json", e["manifest.json"])], r"manifest\.json: duplicate zip entry"),
    "duplicate weights": (lambda e: [("weights.safetensors", b"x")], r"weights\.safetensors: duplicate zip entry"),
    "unlisted entry": (lambda e: [("notes.txt", b"x")], r"notes\.txt: unexpected zip entry"),
    "entry in a folder": (lambda e: [("sub/manifest.json", b"x")], r"sub/manifest\.json: unexpected zip entry"),
    "directory entry": (lambda e: [("sub/", b"")], r"sub/: a directory entry"),
    "symlink entry": (lambda e: [(_symlink_info("timing.json"), b"/etc/passwd")], r"timing\.json: a symbolic link"),
    "encrypted entry": (lambda e: [("timing.json", b"{}")], r"timing\.json: encrypted zip entry"),
    "bzip2 entry": (lambda e: [(_compressed_info("timing.json", zipfile.ZIP_BZIP2), b"{}")],
                    r"timing\.json: unsupported zip compression \(method 12"),
    "lzma entry": (lambda e: [(_compressed_info("timing.json", zipfile.ZIP_LZMA), b"{}")],
                   r"timing\.json: unsupported zip compression \(method 14"),
}


@pytest.mark.parametrize("case", list(ZIP_CASES), ids=list(ZIP_CASES))
def test_hostile_zip_entries(tmp_path, small_result, case):
    path = tmp_path / "m.zip"
    small_result.save(path)
    extra, match = ZIP_CASES[case]
    entries = _entries(path)
    added = extra(entries)
    if not case.startswith("duplicate"):  # the hostile entry replaces the valid one
        for info, _ in added:
            entries.pop(getattr(info, "filename", info), None)
    _zip_with(path, added, base=entries)
    if case == "encrypted entry":
        _set_encrypted_flag(path, "timing.json")
    _assert_rejected(path, match)
    _assert_rejected(path, match, call=read_manifest)


def _peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        try:
            call()
        except ModelFileError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("victim", ["bomb.bin", "history.csv", "weights.safetensors", "timing.json"])
def test_zip_bomb_is_refused_without_reading_it(tmp_path, small_result, victim, monkeypatch):
    """50 MB of zeros (about 50 kB compressed): refused from the declared size, never inflated."""
    path = tmp_path / "m.zip"
    small_result.save(path)
    entries = _entries(path)
    bomb = bytes(50 << 20)
    if victim == "bomb.bin":
        extra, match = [("bomb.bin", bomb)], r"bomb\.bin: unexpected zip entry"
    else:
        entries[victim] = bomb
        extra = []
        match = (
            r"timing\.json: 52428800 bytes, more than the 1048576 allowed"
            if victim == "timing.json"
            else rf"{victim}: 52428800 bytes, the manifest declares \d+"
        )
    _zip_with(path, extra, base=entries)
    del bomb, entries
    assert path.stat().st_size < 1 << 20
    _assert_rejected(path, match)
    assert _peak_bytes(lambda: load_flow(path)) < 8 << 20


def test_reads_are_bounded_by_the_declared_size(tmp_path, small_result, monkeypatch):
    path = tmp_path / "m.zip"
    small_result.save(path)
    monkeypatch.setattr(fio, "MAX_WEIGHTS_BYTES", 100)
    _assert_rejected(path, r"manifest\.json: files\.weights\.safetensors\.size: \d+ is outside \[0, 100\]")


def test_huge_architecture_is_refused_before_allocation(tmp_path, small_result):
    """The issue's 83 kB manifest that made the loader allocate 1.37 GB: refused at once."""
    path = tmp_path / "m.zip"
    small_result.save(path)
    _edit_manifest(path, _set(("flow", "hidden"), [8192] * 16), redigest=True)
    assert _peak_bytes(lambda: load_flow(path)) < 8 << 20


@pytest.mark.parametrize("case", ["truncated", "empty file", "text file", "missing"])
def test_unreadable_model_paths(tmp_path, small_result, case):
    path = tmp_path / "m.zip"
    small_result.save(path)
    raw = path.read_bytes()
    match = {"truncated": r"(unreadable|not a flowprior model)", "empty file": r"not a flowprior model",
             "text file": r"not a flowprior model", "missing": r"model not found"}[case]
    if case == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif case == "empty file":
        path.write_bytes(b"")
    elif case == "text file":
        path.write_text("a,b\n1,2\n")
    else:
        path.unlink()
    _assert_rejected(path, match)


# ----------------------------------------------------------------------------- 5. directories
DIR_CASES = ["symlinked weights", "symlinked manifest", "symlink to a folder", "sub-folder",
             "unlisted file", "fifo"]


@pytest.mark.parametrize("case", DIR_CASES)
def test_hostile_directory_entries(tmp_path, small_result, case):
    path = tmp_path / "m"
    small_result.save(path)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"user data")
    if case == "symlinked weights":
        real = tmp_path / "w.bin"
        real.write_bytes((path / "weights.safetensors").read_bytes())
        (path / "weights.safetensors").unlink()
        (path / "weights.safetensors").symlink_to(real)
        match = r"weights\.safetensors: a symbolic link inside a model directory"
    elif case == "symlinked manifest":
        (path / "timing.json").unlink()
        (path / "timing.json").symlink_to(outside)
        match = r"timing\.json: a symbolic link inside a model directory"
    elif case == "symlink to a folder":
        (path / "history.csv").unlink()
        (path / "history.csv").symlink_to(tmp_path)
        match = r"history\.csv: a symbolic link"
    elif case == "sub-folder":
        (path / "extra").mkdir()
        match = r"extra: not a regular file"
    elif case == "unlisted file":
        (path / ".DS_Store").write_bytes(b"x")
        match = r"\.DS_Store: unexpected entry"
    else:
        os.mkfifo(path / "timing.json.fifo")
        match = r"timing\.json\.fifo: not a regular file"
    _assert_rejected(path, match)
    assert outside.read_bytes() == b"user data"


# ----------------------------------------------------------------------------- 6. weights
def _weights_edit(kind):
    def edit(state):
        if kind == "float64 core":
            return {k: (v.double() if k.startswith("core") else v) for k, v in state.items()}
        if kind == "tensor missing":
            return {k: v for i, (k, v) in enumerate(state.items()) if i != 0}
        if kind == "extra tensor":
            return {**state, "evil": torch.zeros(3)}
        if kind == "bounds":
            return {**state, "lower": state["lower"] - 1}
        if kind == "wrong shape":
            key = next(k for k in state if k.startswith("core"))
            return {**state, key: torch.zeros(tuple(state[key].shape) + (1,))}
        raise AssertionError(kind)

    return edit


WEIGHT_CASES = {
    "float64 core": r"weights\.safetensors: core.*torch\.float64",
    "tensor missing": r"weights\.safetensors: tensors .* do not match the architecture",
    "extra tensor": r"weights\.safetensors: tensors \['evil'\] do not match",
    "bounds": r"manifest\.json: parameters: differs from the weights",
    "wrong shape": r"weights\.safetensors: core.*the manifest's architecture needs",
    "garbage": r"weights\.safetensors: unreadable",
}


@pytest.mark.parametrize("case", list(WEIGHT_CASES), ids=list(WEIGHT_CASES))
def test_rehashed_hostile_weights(model, case):
    entries = _entries(model)
    if case == "garbage":
        entries["weights.safetensors"] = b"\xff" * 64
    else:
        state = st_load(entries["weights.safetensors"])
        entries["weights.safetensors"] = st_save(_weights_edit(case)(state))
    _write(model, _redigest(entries))
    _assert_rejected(model, WEIGHT_CASES[case])


# ----------------------------------------------------------------------------- 7. timing.json
TIMING_CASES = {
    "NaN": (b'{"train_seconds": NaN, "eval_seconds": []}', r"timing\.json: not valid JSON"),
    "negative": (b'{"train_seconds": -1, "eval_seconds": []}', r"timing\.json: train_seconds: -1"),
    "extra key": (b'{"train_seconds": 1, "eval_seconds": [], "x": 1}', r"timing\.json: <timing>: unknown key"),
    "too many evaluations": (b'{"train_seconds": 1, "eval_seconds": [1,1,1,1,1,1,1,1,1,1]}',
                             r"timing\.json: eval_seconds: expected a list of 0 to 3"),
}


@pytest.mark.parametrize("case", list(TIMING_CASES), ids=list(TIMING_CASES))
def test_timing_is_validated(model, case):
    data, match = TIMING_CASES[case]
    entries = _entries(model)
    entries["timing.json"] = data
    _write(model, entries)
    _assert_rejected(model, match)


def test_timing_is_outside_the_digest_and_the_fingerprint(model):
    before = model_fingerprint(model)
    entries = _entries(model)
    entries["timing.json"] = b'{"train_seconds": 123.5, "eval_seconds": [1, 2, 3]}'
    _write(model, entries)
    assert read_manifest(model)["metrics"]["train_seconds"] == 123.5
    assert model_fingerprint(model) == before
    entries.pop("timing.json")
    _write(model, entries)
    assert "timing" not in read_manifest(model)
    assert model_fingerprint(model) == before


# ----------------------------------------------------------------------------- 8. CLI
def test_cli_info_on_a_tampered_model_is_one_line_exit_2(model, capsys):
    _edit_manifest(model, _swap_names, redigest=False)
    before = _snapshot(model)
    for extra in ([], ["--json"], ["--fingerprint"]):
        assert main(["info", str(model), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(model) in err and "manifest.json" in err, err
    assert _snapshot(model) == before


# ----------------------------------------------------------------------------- 9. hostile weights
def _chain(weights, source="w.csv"):
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (len(weights), 2))
    return Chain(make_space([(-6, 6), (-6, 6)]), x, weights=np.asarray(weights, float), source=source)


@pytest.mark.parametrize(
    "weights",
    [np.full(300, 1e308), np.full(300, 5e-324), np.r_[np.full(150, 1e308), np.ones(150)],
     np.r_[np.full(150, 5e-324), np.ones(150)]],
    ids=["1e308", "5e-324", "1e308 and 1", "5e-324 and 1"],
)
def test_extreme_weights_train_and_give_valid_json(tmp_path, weights, capsys):
    res = train_flow(_chain(weights), TrainConfig(max_steps=20, **FAST))
    for key in ("ess_train", "ess_validation", "best_val_nll"):
        assert np.isfinite(res.metrics[key]), key
    path = tmp_path / "m.zip"
    res.save(path)
    assert main(["info", str(path), "--json"]) == 0
    text = capsys.readouterr().out

    def no_nan(c):
        raise AssertionError(f"{c} in info --json")

    m = json.loads(text, parse_constant=no_nan)
    assert 1.0 <= m["metrics"]["ess_train"] <= m["metrics"]["n_train"]


def test_power_of_two_rescaling_keeps_the_flow_bit_identical():
    base = np.random.default_rng(1).uniform(0.1, 1.0, 300)
    a = train_flow(_chain(base), TrainConfig(max_steps=15, **FAST))
    b = train_flow(_chain(base * 2.0**-1000), TrainConfig(max_steps=15, **FAST))
    assert fio._weights_bytes(a.flow) == fio._weights_bytes(b.flow)


def test_empty_chain_is_a_clear_error():
    with pytest.raises(InputError, match="empty.csv"):  # the chain itself refuses no rows ...
        Chain(make_space([(-6, 6), (-6, 6)]), np.empty((0, 2)), source="empty.csv")
    chain = _chain(np.ones(300), source="empty.csv")  # ... and so does training, on its own
    chain.samples, chain.weights = chain.samples[:0], chain.weights[:0]
    with pytest.raises(InputError, match=r"empty.csv: weight: no usable weights \(0 rows"):
        train_flow(chain, TrainConfig(max_steps=5, **FAST))


BAD_SETTINGS = {
    "lr inf": (dict(lr=float("inf")), r"lr must be finite and > 0, not inf"),
    "lr nan": (dict(lr=float("nan")), r"lr: expected float, got nan"),
    "lr 0": (dict(lr=0.0), r"lr must be finite and > 0"),
    "lr string": (dict(lr="1e-3"), r"lr: expected float, got '1e-3'"),
    "seed -1": (dict(seed=-1), r"seed must be in \[0, 2\*\*63 - 1\], not -1"),
    "seed 2**70": (dict(seed=2**70), r"seed must be in \[0, 2\*\*63 - 1\]"),
    "seed 1.5": (dict(seed=1.5), r"seed: expected int, got 1\.5"),
    "transforms True": (dict(transforms=True), r"transforms: expected int, got True"),
    "transforms 10**6": (dict(transforms=10**6), r"transforms: 1000000 is outside"),
    "hidden width 10**5": (dict(hidden=(10**5,)), r"hidden\[0\]: 100000 is outside"),
    "hidden 100 layers": (dict(hidden=(4,) * 100), r"hidden: 100 layers"),
    "bins 10**6": (dict(bins=10**6), r"bins: 1000000 is outside"),
    "max_time inf": (dict(max_time=float("inf")), r"max_time must be finite"),
    "progress 1": (dict(progress=1), r"progress: expected bool"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS), ids=list(BAD_SETTINGS))
def test_bad_training_settings(case):
    kwargs, match = BAD_SETTINGS[case]
    with pytest.raises(InputError, match=r"^flow settings: .*" + match):
        TrainConfig(**{**FAST, **kwargs})


def test_divergence_is_a_one_line_input_error(monkeypatch):
    import flowprior.train as tr

    real = tr.loss_value
    monkeypatch.setattr(tr, "loss_value", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"^flow settings: lr: the training loss is nan at step 1"):
        train_flow(_chain(np.ones(300)), TrainConfig(max_steps=5, **FAST))
    assert issubclass(TrainingDivergedError, InputError)


# ----------------------------------------------------------------------------- 10. writes
def test_nan_never_reaches_the_manifest(tmp_path, small_result):
    bad = dataclasses.replace(small_result, metrics={**small_result.metrics, "val_kl": float("nan")})
    path = tmp_path / "m.zip"
    with pytest.raises(ModelFileError, match=r"m\.zip: manifest\.json: metrics\.val_kl: not a finite"):
        save_model(bad, path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["foreign dir", "foreign zip-named file", "dir over zip model",
                                  "zip over dir model", "symlink to a model"])
def test_save_refuses_to_replace_what_is_not_a_model(tmp_path, small_result, case):
    if case == "foreign dir":
        target = tmp_path / "out"
        target.mkdir()
        (target / "chain.csv").write_text("a,b\n1,2\n")
    elif case == "foreign zip-named file":
        target = tmp_path / "out.zip"
        target.write_text("a,b\n1,2\n")
    elif case == "dir over zip model":
        target = tmp_path / "out"
        small_result.save(tmp_path / "m.zip")
        os.replace(tmp_path / "m.zip", target)
    elif case == "zip over dir model":
        target = tmp_path / "out.zip"
        small_result.save(tmp_path / "m")
        os.replace(tmp_path / "m", target)
    else:
        small_result.save(tmp_path / "m.zip")
        target = tmp_path / "link.zip"
        target.symlink_to(tmp_path / "m.zip")
    before = {p: (p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")}
    with pytest.raises(InputError, match=rf"{target.name}: exists and is not a flowprior model"):
        save_model(small_result, target)
    after = {p: (p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")}
    assert after == before


def test_save_replaces_an_existing_model(model, small_result):
    model_fingerprint(model)
    save_model(small_result, model, timing=False)
    assert "timing.json" not in _entries(model)
    load_flow(model)


# ----------------------------------------------------------------------------- 11. determinism
def test_training_twice_gives_byte_identical_models(tmp_path, gauss_chain_2d):
    cfg = TrainConfig(max_steps=30, seed=11, **FAST)
    a, b = train_flow(gauss_chain_2d, cfg), train_flow(gauss_chain_2d, cfg)
    c = train_flow(gauss_chain_2d, dataclasses.replace(cfg, seed=12))
    for name in ("a.zip", "b.zip"):
        save_model(a if name == "a.zip" else b, tmp_path / name, timing=False)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    a.save(tmp_path / "a_dir")
    b.save(tmp_path / "b_dir")
    ea, eb = _entries(tmp_path / "a_dir"), _entries(tmp_path / "b_dir")
    assert set(ea) == set(eb) == set(fio.ENTRIES)
    assert {k: v for k, v in ea.items() if k != "timing.json"} == {
        k: v for k, v in eb.items() if k != "timing.json"
    }
    c.save(tmp_path / "c.zip")
    fa, fb = model_fingerprint(tmp_path / "a.zip"), model_fingerprint(tmp_path / "b_dir")
    assert fa == fb == model_fingerprint(tmp_path / "a_dir")
    assert fa != model_fingerprint(tmp_path / "c.zip")
    assert len(fa) == 64 and int(fa, 16) >= 0
