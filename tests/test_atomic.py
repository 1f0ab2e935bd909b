"""Tests for flowprior._atomic and flowprior.errors."""

import os
import pickle

import pytest

from flowprior._atomic import (
    atomic_output_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    check_output_path,
    is_within,
    same_file,
)
from flowprior.errors import FlowpriorError, InputError, OutputError, _input_error


class Boom(RuntimeError):
    pass


def _listing(directory):
    return sorted(os.listdir(directory))


def test_atomic_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "hello\nworld\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text() == "hello\nworld\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _listing(tmp_path) == ["a.txt", "b.bin"]  # no temp files left


def test_atomic_write_replaces_existing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as fh:
        fh.write("new")
        assert target.read_text() == "old"  # not visible before the block ends
    assert target.read_text() == "new"


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_atomic_write_failure_leaves_nothing(tmp_path, mode):
    target = tmp_path / "out.dat"
    with pytest.raises(Boom):
        with atomic_write(target, mode) as fh:
            fh.write("partial" if mode == "w" else b"partial")
            raise Boom
    assert not target.exists()
    assert _listing(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(Boom):
        with atomic_write(target) as fh:
            fh.write("new but broken")
            raise Boom
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["out.txt"]


def test_atomic_write_rejects_read_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "r"):
            pass


def test_atomic_output_path_success_and_suffix(tmp_path):
    target = tmp_path / "table.parquet"
    with atomic_output_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.suffix == ".parquet"
        assert tmp != target
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    assert _listing(tmp_path) == ["table.parquet"]


def test_atomic_output_path_failure_leaves_nothing(tmp_path):
    target = tmp_path / "table.parquet"
    with pytest.raises(Boom):
        with atomic_output_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise Boom
    assert _listing(tmp_path) == []


def test_atomic_output_path_failure_keeps_old(tmp_path):
    target = tmp_path / "m.zip"
    target.write_bytes(b"old")
    with pytest.raises(Boom):
        with atomic_output_path(target) as tmp:
            tmp.write_bytes(b"new")
            raise Boom
    assert target.read_bytes() == b"old"


def test_permissions_follow_umask(tmp_path):
    target = tmp_path / "p.txt"
    atomic_write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_permissions_of_existing_file_kept(tmp_path):
    target = tmp_path / "p.txt"
    target.write_text("x")
    os.chmod(target, 0o640)
    atomic_write_text(target, "y")
    assert target.stat().st_mode & 0o777 == 0o640


def test_missing_directory_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "nope" / "x.txt", "x")


def test_input_error_hierarchy_and_one_line():
    err = InputError("a.csv: column 'x':\n  bad\r\nthing")
    assert isinstance(err, FlowpriorError)
    assert isinstance(err, ValueError)
    assert str(err) == "a.csv: column 'x': bad thing"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


def test_input_error_helper_layout(tmp_path):
    assert str(_input_error(tmp_path / "f.csv", "column 'a'", "NaN")) == (
        f"{tmp_path / 'f.csv'}: column 'a': NaN"
    )
    assert str(_input_error("f.csv", None, "file is empty")) == "f.csv: file is empty"


def test_same_file_sees_links_and_other_spellings(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x\n")
    os.link(a, tmp_path / "hard.csv")
    (tmp_path / "soft.csv").symlink_to(a)
    (tmp_path / "sub").mkdir()
    assert same_file(a, tmp_path / "hard.csv")
    assert same_file(a, tmp_path / "soft.csv")
    assert same_file(a, tmp_path / "sub" / ".." / "a.csv")
    assert not same_file(a, tmp_path / "b.csv")
    assert is_within(tmp_path / "sub" / "x", tmp_path)
    assert not is_within(tmp_path, tmp_path) and not is_within(tmp_path / "subx", tmp_path / "sub")


def test_check_output_path_refuses_and_allows(tmp_path):
    (tmp_path / "in.csv").write_text("a\n1\n")
    (tmp_path / "mine.csv").write_text("ours\n")
    ok = check_output_path(tmp_path / "new.csv", option="--out", avoid={"IN": tmp_path / "in.csv"})
    assert ok == tmp_path / "new.csv" and not ok.exists()
    assert check_output_path(tmp_path / "mine.csv", option="--out", ours=lambda p: None)
    cases = [
        (tmp_path / "in.csv", {}, "same file as IN"),
        (tmp_path / "mine.csv", {"ours": lambda p: "not ours"},
         "exists and is not a flowprior output (not ours)"),
        (tmp_path / "missing" / "x.csv", {}, "does not exist"),
        (tmp_path / "mine.csv" / "x.csv", {}, "is not a directory"),
        (tmp_path / "in.csv" / "x.csv", {}, "lies inside IN"),
        (tmp_path, {"ours": lambda p: None}, "contains IN"),
    ]
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(OutputError, match="d.csv: --out: is a directory; a flowprior output file"):
        check_output_path(tmp_path / "d.csv", option="--out", ours=lambda p: None)
    for path, kw, needle in cases:
        with pytest.raises(OutputError, match="--out") as info:
            check_output_path(path, option="--out", avoid={"IN": tmp_path / "in.csv"}, **kw)
        assert needle in str(info.value) and str(path) in str(info.value)
    with pytest.raises(OutputError, match="--out: empty path"):
        check_output_path("", option="--out")
