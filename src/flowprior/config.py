"""Reading configuration safely: bounded YAML, bounded config objects, one-line schema errors.

Three helpers, used by the library (parameter tables) and by the workflow (the ``Snakefile``
checks the loaded ``config`` before anything else):

:func:`load_yaml`
    Parse one YAML document with a loader that refuses more than :data:`MAX_ALIASES` alias
    references, nesting deeper than :data:`MAX_DEPTH`, a document whose *expanded* size
    (aliases counted as often as they are used) exceeds :data:`MAX_NODES` nodes (the
    "billion laughs" bomb), recursive aliases, and duplicate mapping keys (which PyYAML
    silently resolves to the last one). The expansion is counted on the composed node graph,
    never materialised.
:func:`check_config_size`
    The same expansion bound for an already loaded object (a Snakemake ``config``, a
    ``kwargs`` mapping): an identity-aware traversal that counts a shared list or mapping as
    often as it is referenced, stops as soon as the bound is passed, and names the key path.
:func:`validate_config` / :func:`check_workflow_config`
    JSON-schema validation that fills in the schema's defaults exactly like
    ``snakemake.utils.validate`` and reports the first error on one line, naming the config
    file(s) and the key path (``flow.transforms``), instead of a dump of the whole config.

Every problem raises :class:`~flowprior.errors.InputError` (``<file>: <where>: <what>``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import InputError, _input_error

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_NODES",
    "check_config_size",
    "check_workflow_config",
    "load_yaml",
    "validate_config",
]

#: Most nodes (mappings, sequences, keys and scalars) a document may expand to, every alias
#: counted as often as it is used. The default study has a few hundred.
MAX_NODES = 100_000
#: Most alias references (``*name``) in one YAML document.
MAX_ALIASES = 1_000
#: Deepest nesting of mappings and sequences.
MAX_DEPTH = 64
_MAX_MESSAGE = 300  # characters of a schema error message kept (the instance repr may be huge)


# ----------------------------------------------------------------------------- key paths
def _path_text(path: Sequence[Any]) -> str:
    """``["flow", "hidden", 0]`` -> ``"flow.hidden[0]"``; ``[]`` -> ``"(top level)"``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _obj_children(obj: Any) -> Iterator[tuple[Any, Any]] | None:
    """Children of a loaded object: ``(label, child)``; a mapping key is a child too."""
    if isinstance(obj, Mapping):
        return ((k, v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return iter(enumerate(obj))
    return None


def _key_label(key: Node) -> Any:
    if isinstance(key, ScalarNode):
        return key.value
    return f"<key at line {key.start_mark.line + 1}>"


def _node_children(node: Any) -> Iterator[tuple[Any, Any]] | None:
    """Children of a composed YAML node, labelled by key (scalar keys) or index."""
    if isinstance(node, MappingNode):
        return (
            (_key_label(k), v) for k, v in node.value
        )
    if isinstance(node, SequenceNode):
        return iter(enumerate(node.value))
    return None


class _TooLarge(Exception):
    def __init__(self, kind: str, path: list[Any]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.path = path


def _expanded_sizes(
    root: Any,
    children: Callable[[Any], Iterator[tuple[Any, Any]] | None],
    *,
    limit: int,
) -> tuple[dict[int, int], dict[int, int]]:
    """Expanded size of every container reachable from ``root``, capped at ``limit + 1``.

    Iterative, identity-aware depth-first traversal: a container reached again is added with
    its memoised size, never walked again, so the cost is that of the distinct containers
    (and of the children of each until its sum passes the limit), not of the expansion.

    Returns
    -------
    (sizes, refs)
        ``id(container) -> capped expanded size`` and ``id(container) -> times referenced``.

    Raises
    ------
    _TooLarge
        ``"recursive"`` (a container inside itself) or ``"deep"`` (more than
        :data:`MAX_DEPTH` levels), with the key path.
    """
    cap = limit + 1
    sizes: dict[int, int] = {}
    refs: dict[int, int] = {id(root): 1}
    keep = [root]  # ids are only unique while the objects live
    it0 = children(root)
    if it0 is None:
        return {id(root): 1}, refs
    stack: list[tuple[Any, Iterator[tuple[Any, Any]]]] = [(root, it0)]
    labels: list[Any] = []
    acc = [1]
    on_stack = {id(root)}
    while stack:
        obj, it = stack[-1]
        pushed = False
        if acc[-1] <= cap:
            for label, child in it:
                acc[-1] += isinstance(obj, (Mapping, MappingNode))  # the key
                sub = children(child)
                if sub is None:
                    acc[-1] += 1
                elif id(child) in sizes:
                    acc[-1] += sizes[id(child)]
                    refs[id(child)] += 1
                elif id(child) in on_stack:
                    raise _TooLarge("recursive", [*labels, label])
                else:
                    if len(stack) >= MAX_DEPTH:
                        raise _TooLarge("deep", [*labels, label])
                    refs[id(child)] = refs.get(id(child), 0) + 1
                    keep.append(child)
                    stack.append((child, sub))
                    labels.append(label)
                    acc.append(1)
                    on_stack.add(id(child))
                    pushed = True
                    break
                if acc[-1] > cap:
                    break
        if pushed:
            continue
        stack.pop()
        on_stack.discard(id(obj))
        size = min(acc.pop(), cap)
        sizes[id(obj)] = size
        if stack:
            labels.pop()
            acc[-1] += size
    return sizes, refs


def _culprit(
    root: Any,
    children: Callable[[Any], Iterator[tuple[Any, Any]] | None],
    sizes: dict[int, int],
    refs: dict[int, int],
    limit: int,
) -> list[Any]:
    """Key path of the value to blame for an oversized document.

    Descends from the root into the first child that alone exceeds the limit, and stops at the
    value that repeats it (a child used several times, as YAML aliases are) or whose children
    are each within the limit.
    """
    path: list[Any] = []
    node = root
    while True:
        kids = list(children(node) or ())
        big = next(((lab, c) for lab, c in kids if sizes.get(id(c), 0) > limit), None)
        if big is None:
            return path
        label, child = big
        repeated = refs.get(id(child), 1) > 1 or sum(c is child for _, c in kids) > 1
        if repeated and path:
            return path
        path.append(label)
        if repeated:
            return path
        node = child


def _check_expansion(
    root: Any,
    children: Callable[[Any], Iterator[tuple[Any, Any]] | None],
    *,
    source: str,
    limit: int,
) -> None:
    try:
        sizes, refs = _expanded_sizes(root, children, limit=limit)
    except _TooLarge as exc:
        where = _path_text(exc.path)
        if exc.kind == "recursive":
            raise _input_error(
                source, where, "value contains itself (recursive YAML alias); not allowed"
            ) from None
        raise _input_error(
            source, where, f"nested more than {MAX_DEPTH} levels deep; not allowed"
        ) from None
    if sizes.get(id(root), 1) > limit:
        where = _path_text(_culprit(root, children, sizes, refs, limit))
        raise _input_error(
            source,
            where,
            f"expands to more than {limit} nodes (aliases counted each time they are used; "
            "an alias bomb?); refusing to process it",
        )


def check_config_size(
    config: Any, *, source: str | os.PathLike, limit: int = MAX_NODES
) -> None:
    """Refuse a loaded config whose expansion exceeds ``limit`` nodes.

    Parameters
    ----------
    config : object
        Mappings, lists and tuples are walked; a container referenced several times (what a
        YAML alias loads to) is counted every time, but walked once. Every mapping key and
        every scalar is one node.
    source : str or path-like
        The config file(s), named in the error.
    limit : int
        Default :data:`MAX_NODES`.

    Raises
    ------
    InputError
        ``"<source>: <key path>: expands to more than <limit> nodes ..."``, or a recursive
        value, or nesting deeper than :data:`MAX_DEPTH`.
    """
    src = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    _check_expansion(config, _obj_children, source=src, limit=limit)


# ----------------------------------------------------------------------------- YAML loading
class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that bounds aliases and depth while composing and refuses duplicate keys."""

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream)
        self._source = source
        self._aliases = 0
        self._depth = 0

    def _line(self) -> str:
        mark = self.peek_event().start_mark
        return f"line {mark.line + 1}"

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _input_error(
                    self._source,
                    self._line(),
                    f"more than {MAX_ALIASES} YAML alias references; refusing to expand them",
                )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _input_error(
                    self._source, self._line(), f"nested more than {MAX_DEPTH} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` and the keys overriding it are fine
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key: the base constructor reports it
                continue
            if duplicate:
                raise _input_error(
                    self._source,
                    f"line {line}",
                    f"duplicate key {key!r} (first at line {seen[key]}); keep only one",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _load(text: str, *, source: str) -> Any:
    """Parse with :class:`_LimitedLoader`; YAML syntax errors propagate as ``yaml.YAMLError``."""
    loader = _LimitedLoader(text, source=source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, _node_children, source=source, limit=MAX_NODES)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike, *, text: str | None = None) -> Any:
    """Read one YAML document with the bounds of this module.

    Parameters
    ----------
    path : str or path-like
        The file; named in every error. Read as UTF-8 (a BOM is dropped) unless ``text`` is
        given.
    text : str, optional
        The document's text, when it has been read already.

    Returns
    -------
    object
        What ``yaml.safe_load`` would return (``None`` for an empty document).

    Raises
    ------
    InputError
        Unreadable file, invalid YAML, more than one document, more than :data:`MAX_ALIASES`
        aliases, deeper than :data:`MAX_DEPTH`, an expansion beyond :data:`MAX_NODES` nodes,
        a recursive alias, or a duplicate key; one line naming the file and the line or key.
    """
    source = os.fspath(path)
    if text is None:
        try:
            with open(path, encoding="utf-8-sig") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise _input_error(source, None, "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise _input_error(source, None, f"cannot read file ({reason})") from exc
    try:
        return _load(text, source=source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise _input_error(source, where, f"invalid YAML ({problem})") from None


# ----------------------------------------------------------------------------- schema
def _schema_validator(schema_path: Path) -> Any:
    """A jsonschema validator of the schema file that fills in defaults like Snakemake's."""
    from jsonschema import Draft202012Validator, validators
    from referencing import Registry, Resource

    schema = load_yaml(schema_path)
    schema["$id"] = schema_path.resolve().as_uri()
    registry = Registry().with_resource(
        uri=schema["$id"], resource=Resource.from_contents(schema)
    )
    base = validators.validator_for(schema, default=Draft202012Validator)
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):  # as snakemake.utils
        for name, sub in properties.items():
            if "default" in sub and isinstance(instance, dict):
                instance.setdefault(name, sub["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    extended = validators.extend(base, {"properties": set_defaults})
    return extended(schema, registry=registry)


def _error_path(error: Any) -> tuple[list[Any], str]:
    """Key path and one-line message of a jsonschema error."""
    path = list(error.absolute_path)
    message = " ".join(str(error.message).split())
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        extra = [
            k
            for k in error.instance
            if k not in allowed and not any(re.search(p, str(k)) for p in patterns)
        ]
        if extra:
            path.append(extra[0])
            also = f"; also unknown: {', '.join(map(repr, extra[1:6]))}" if extra[1:] else ""
            message = f"unknown key ({extra[0]!r} was unexpected){also}"
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + " ..."
    return path, message


def _has_path(doc: Any, path: Sequence[Any]) -> int:
    """Number of leading keys of ``path`` present in ``doc``."""
    n = 0
    for part in path:
        if isinstance(doc, Mapping) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc):
            doc = doc[part]
        else:
            break
        n += 1
    return n


def _blame(path: Sequence[Any], files: Sequence[str]) -> str:
    """The config file(s) that define the longest prefix of ``path`` (all when unknown)."""
    depth = {}
    for f in files:
        try:
            depth[f] = _has_path(load_yaml(f), path)
        except InputError:
            depth[f] = 0
    best = max(depth.values(), default=0)
    named = [f for f in files if depth[f] == best] if best else list(files)
    return ", ".join(named) or "<config>"


def validate_config(
    config: dict, schema: str | os.PathLike, *, configfiles: Iterable[str | os.PathLike] = ()
) -> dict:
    """Validate ``config`` against a JSON schema (YAML file), filling in its defaults.

    Parameters
    ----------
    config : dict
        Modified in place: every ``default`` of the schema is set where the key is missing
        (the same algorithm as ``snakemake.utils.validate``).
    schema : str or path-like
        The schema file (``workflow/schemas/config.schema.yaml``).
    configfiles : iterable of path
        The files the config was loaded from (``workflow.configfiles``); the error names the
        one(s) defining the offending key.

    Returns
    -------
    dict
        ``config``.

    Raises
    ------
    InputError
        ``"<config file(s)>: <key path>: <what is wrong>"`` for the first error, with the
        number of further errors. Needs ``jsonschema`` (installed with Snakemake).
    """
    files = [os.fspath(f) for f in configfiles]
    validator = _schema_validator(Path(schema))
    errors = validator.iter_errors(config)
    first = next(errors, None)
    if first is None:
        return config
    more = sum(1 for _ in errors)
    path, message = _error_path(first)
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    raise _input_error(_blame(path, files), _path_text(path), message)


def check_workflow_config(
    config: dict, schema: str | os.PathLike, *, configfiles: Iterable[str | os.PathLike] = ()
) -> dict:
    """Everything the ``Snakefile`` checks before planning: bounds, then the schema.

    Each config file is parsed again with :func:`load_yaml` (alias, depth, size and
    duplicate-key bounds, naming the file and the line); YAML that this safe loader cannot
    read (e.g. Python tags Snakemake's loader accepts) is left to Snakemake. Then the merged
    ``config`` (which also holds ``--config`` values) is bounded with
    :func:`check_config_size` and validated with :func:`validate_config`.

    Returns
    -------
    dict
        ``config``, with the schema's defaults filled in.
    """
    files = [os.fspath(f) for f in configfiles]
    for f in files:
        try:
            with open(f, encoding="utf-8-sig") as fh:
                _load(fh.read(), source=f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
    check_config_size(config, source=", ".join(files) or "<config>")
    return validate_config(config, schema, configfiles=files)
