"""Compare the numbers of two result trees' summary.json files (before/after a refactoring).

Usage::

    python benchmarks/compare_summaries.py OLD_RESULTS NEW_RESULTS [--rtol 1e-9]

Walks every ``<analysis>/summary.json`` under both trees, flattens each to ``path -> value``
and prints, per analysis, how many numbers are identical, equal within ``--rtol`` (floating
point), different, or present on one side only; then lists the differing ones. Paths (strings
that name files) are compared only by their key, not their value. Exit status 1 when a number
differs beyond the tolerance or a key is missing on one side.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("compare_summaries")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, 2]}} -> {"a.b[0]": 1, "a.b[1]": 2}``."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def _is_volatile(key: str) -> bool:
    """Run-dependent fields: wall times, versions, file paths and hashes of paths."""
    tail = key.rsplit(".", 1)[-1]
    return any(
        s in tail for s in ("seconds", "wall", "time", "versions", "path", "source", "model")
    ) or ".versions." in key


def compare(old: dict[str, Any], new: dict[str, Any], *, rtol: float) -> dict[str, list]:
    """Classify every flattened key of two summaries."""
    res: dict[str, list] = {"same": [], "close": [], "differ": [], "old_only": [], "new_only": []}
    for k in sorted(set(old) | set(new)):
        if k not in new:
            res["old_only"].append(k)
        elif k not in old:
            res["new_only"].append(k)
        else:
            a, b = old[k], new[k]
            if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
                res["same"].append(k)
            elif _is_volatile(k) or isinstance(a, str) or isinstance(b, str):
                res["same" if type(a) is type(b) else "differ"].append(k)
            elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(
                a, b, rel_tol=rtol, abs_tol=rtol
            ):
                res["close"].append(k)
            else:
                res["differ"].append((k, a, b))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-9)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bad = False
    names = sorted({p.parent.name for t in (args.old, args.new) for p in t.glob("*/summary.json")})
    print(f"{'analysis':<18} {'same':>6} {'close':>6} {'differ':>6} {'old only':>8} {'new only':>8}")
    for name in names:
        po, pn = args.old / name / "summary.json", args.new / name / "summary.json"
        if not (po.exists() and pn.exists()):
            print(f"{name:<18} missing in {'new' if po.exists() else 'old'}")
            bad = True
            continue
        r = compare(flatten(json.loads(po.read_text())), flatten(json.loads(pn.read_text())), rtol=args.rtol)
        print(
            f"{name:<18} {len(r['same']):>6} {len(r['close']):>6} {len(r['differ']):>6} "
            f"{len(r['old_only']):>8} {len(r['new_only']):>8}"
        )
        for k, a, b in r["differ"][:40]:
            print(f"    differ  {k}: {a!r} -> {b!r}")
        for k in r["old_only"][:20]:
            print(f"    old only {k}")
        for k in r["new_only"][:20]:
            print(f"    new only {k}")
        bad |= bool(r["differ"] or r["old_only"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
