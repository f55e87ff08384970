"""Reading bridge files: YAML → :class:`~meshbridge.spec.models.Bridge`, with errors that point at lines.

Every problem becomes a :class:`~meshbridge.errors.SpecIssue` naming the file, the line, the field path,
what is wrong and the fix; all problems of a file are reported at once in one :class:`SpecError`.
"""

from __future__ import annotations

import difflib
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from meshbridge.errors import RenderError, SpecError, SpecIssue
from meshbridge.spec.models import API_VERSION, KIND, Bridge, CrossFieldError
from meshbridge.yamlerrors import yaml_problem

DEFAULT_FILE = "bridge.yaml"

Path_ = tuple[str | int, ...]


def load_bridge(path: str | Path) -> Bridge:
    """Read and validate a bridge file.

    Args:
        path: the YAML file (``bridge.yaml`` by default on the CLI).

    Returns:
        The validated :class:`Bridge`.

    Raises:
        SpecError: the file is missing or unreadable, is not YAML, or does not validate; ``.issues``
            lists each problem with its line and fix.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        folder = p.parent.resolve()
        init = "meshbridge init" if folder == Path.cwd().resolve() else f"meshbridge init {shlex.quote(str(folder))}"
        write = f"run '{init}' to write one" if p.name == DEFAULT_FILE else f"write {p.name} there"
        raise SpecError(f"{p}: no such bridge file (looked in {folder}). Fix: {write}, or pass -f/--file PATH") from e
    except IsADirectoryError as e:
        inside = p / DEFAULT_FILE
        hint = f"pass the bridge file inside it, e.g. -f {inside}" if inside.is_file() else "pass the bridge file"
        raise SpecError(f"{p}: is a directory, not a bridge file. Fix: {hint}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(
            f"{p}: cannot read the bridge file ({e}). Fix: check its permissions and encoding (UTF-8)"
        ) from e
    return parse_bridge(text, source=str(p))


def parse_bridge(text: str, source: str = "<string>") -> Bridge:
    """Validate bridge YAML text; see :func:`load_bridge`. ``source`` names the text in errors."""
    try:
        node, data = _compose_and_construct(text)
    except yaml.YAMLError as e:
        p = yaml_problem(e, text)
        issue = SpecIssue(source, p.line, "(document)", f"not valid YAML: {p.problem}", p.fix)
        raise SpecError(str(issue), [issue]) from e
    if not isinstance(data, dict):
        issue = SpecIssue(
            source,
            1,
            "(document)",
            "the document is not a mapping",
            f"start from 'meshbridge init': a bridge has apiVersion: {API_VERSION}, kind: {KIND}, metadata, spec",
        )
        raise SpecError(str(issue), [issue])
    pre = _duplicate_keys(node, source) or _check_header(data, source, node)
    if pre:
        raise SpecError(_summary(source, pre), pre)
    try:
        return Bridge.model_validate(data)
    except ValidationError as e:
        issues = _issues(e, source, node)
        raise SpecError(_summary(source, issues), issues) from e


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse once (libyaml when available): the node tree (for line numbers) and the plain data."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _duplicate_keys(node: yaml.Node | None, source: str) -> list[SpecIssue]:
    """A key given twice in one mapping: YAML keeps the last silently, which hides a mistake."""
    issues: list[SpecIssue] = []

    def walk(n: yaml.Node, at: Path_) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                line = k.start_mark.line + 1
                if key in seen:
                    issues.append(
                        SpecIssue(
                            source,
                            line,
                            format_path((*at, key)),
                            f"key {key!r} is given twice (first at line {seen[key]})",
                            "keep one of them; YAML would silently use the last",
                        )
                    )
                seen.setdefault(key, line)
                walk(v, (*at, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*at, i))

    if node is not None:
        walk(node, ())
    return issues


def _check_header(data: dict[str, Any], source: str, node: yaml.Node | None) -> list[SpecIssue]:
    if data.get("apiVersion") == API_VERSION and data.get("kind") == KIND:
        return []
    lines = _line_index(node)
    issues = []
    if data.get("apiVersion") != API_VERSION:
        issues.append(
            SpecIssue(
                source,
                lines.get(("apiVersion",), 1),
                "apiVersion",
                f"is {data.get('apiVersion')!r}, not {API_VERSION!r}",
                f"set 'apiVersion: {API_VERSION}'",
            )
        )
    if data.get("kind") != KIND:
        issues.append(
            SpecIssue(
                source,
                lines.get(("kind",), 1),
                "kind",
                f"is {data.get('kind')!r}, not {KIND!r}",
                f"set 'kind: {KIND}'",
            )
        )
    return issues


def _summary(source: str, issues: list[SpecIssue]) -> str:
    head = f"{source}: {len(issues)} problem{'s' if len(issues) != 1 else ''} in the bridge file"
    return head + "\n" + "\n".join(f"  {i}" for i in issues)


def _line_index(node: yaml.Node | None) -> dict[Path_, int]:
    """Map each field path to the 1-based line of its key (mappings) or item (sequences)."""
    out: dict[Path_, int] = {}

    def walk(n: yaml.Node, at: Path_) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                out[(*at, key)] = k.start_mark.line + 1
                walk(v, (*at, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                out[(*at, i)] = v.start_mark.line + 1
                walk(v, (*at, i))

    if node is not None:
        out[()] = node.start_mark.line + 1
        walk(node, ())
    return out


def _locate(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest ancestor that exists in the file."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def format_path(path: Path_) -> str:
    """``("spec", "exports", 0, "port")`` → ``spec.exports[0].port``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _scalar_at(node: yaml.Node | None, path: Path_) -> str | None:
    """The text of the scalar at ``path`` as written in the file (``yes``, ``1.20``), or ``None``."""
    n = node
    for part in path:
        if isinstance(n, yaml.MappingNode):
            n = next((v for k, v in n.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
        elif isinstance(n, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(n.value):
            n = n.value[part]
        else:
            return None
    return n.value if isinstance(n, yaml.ScalarNode) else None


def _issues(err: ValidationError, source: str, node: yaml.Node | None) -> list[SpecIssue]:
    lines = _line_index(node)
    issues: list[SpecIssue] = []
    for e in err.errors(include_url=False):
        loc: Path_ = tuple(e["loc"])
        ctx = e.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, CrossFieldError):
            for rel, problem in cause.problems:
                path = (*loc, *rel)  # paths are relative to the model that raised (the root: absolute)
                problem, fix = _split_fix(problem)
                issues.append(SpecIssue(source, _locate(lines, path), format_path(path), problem, fix))
            continue
        if e["type"] == "bool_not_number":
            loc = (*loc, *ctx.get("at", ()))
        problem, fix = _explain(e, loc, _scalar_at(node, loc))
        issues.append(SpecIssue(source, _locate(lines, loc), format_path(loc), problem, fix))
    return issues


def _split_fix(problem: str) -> tuple[str, str]:
    """Our messages carry their fix after the last '; ' — split it off, or give a generic one."""
    if "; " in problem:
        head, fix = problem.rsplit("; ", 1)
        return head, fix
    return problem, "correct the value so the references agree"


_BOUNDS = {"greater_than_equal": "≥", "less_than_equal": "≤", "greater_than": ">", "less_than": "<"}


def _explain(e: Any, loc: Path_, written: str | None) -> tuple[str, str]:
    """Problem and fix of one pydantic error, in meshbridge's words (pydantic's own wording never shows).

    ``written`` is the scalar as the file spells it (``yes`` for a boolean, ``1.20`` for the float 1.2).
    """
    kind = e["type"]
    ctx = e.get("ctx") or {}
    field = str(loc[-1]) if loc else "(document)"
    got = e.get("input")
    text = written if written is not None and not isinstance(got, str) else _show(got)
    shown = f" (got {text})" if text is not None else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(field, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"unknown field {field!r}", f"{hint}remove it or use one of: {', '.join(allowed)}")
    if kind == "missing":
        return (f"required field {field!r} is missing", f"add '{field}:' here (see docs/spec.md)")
    if kind == "value_error":  # our validators: the message names the value, and ends in '; <the fix>'
        msg = e["msg"].removeprefix("Value error, ")
        return _split_fix(msg) if "; " in msg else (msg, "correct the value (see docs/spec.md)")
    if kind == "bool_not_number":
        example = ctx.get("example")
        return (
            f"must be a number, got a boolean ({text})",
            f"write a number, e.g. {_number(example)}" if example is not None else "write a number",
        )
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return (f"must be a whole number{_got(got, shown)}", "write a whole number")
    if kind in ("float_parsing", "float_type"):
        return (f"must be a number{_got(got, shown)}", "write a number")
    if kind in ("bool_parsing", "bool_type"):
        return (f"must be true or false{_got(got, shown)}", "write true or false")
    if kind == "string_type":
        if _is_scalar(got):
            why = "true/yes/on/off as booleans" if isinstance(got, bool) else "digits as a number"
            return (f"must be a string, got {_kind(got)} ({text})", f'quote it: "{text}" (unquoted, YAML reads {why})')
        return (f"must be a string{_got(got, shown)}", "write a single value in quotes")
    if kind == "literal_error":
        expected = ctx.get("expected")
        return (f"must be {expected}{shown}", f"use one of {expected} (exactly so, case included)")
    if kind in _BOUNDS:
        limit = _number(next(iter(ctx.values()), "?"))
        return (f"must be {_BOUNDS[kind]} {limit}{shown}", f"use a value {_BOUNDS[kind]} {limit}")
    if kind in ("too_short", "too_long"):
        one, many = ("entry", "entries") if ctx.get("field_type") == "Dictionary" else ("item", "items")
        bound = ctx.get("min_length" if kind == "too_short" else "max_length")
        counted = f"{bound} {one if bound == 1 else many}"
        has = f"(it has {ctx.get('actual_length')})"
        if kind == "too_short":
            return (f"needs at least {counted} {has}", "add more")
        return (f"takes at most {counted} {has}", "remove some")
    if kind == "string_pattern_mismatch":
        return (f"is not of the expected form{shown}", f"match the pattern {ctx.get('pattern')}")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return (f"must be a mapping (key: value lines){_got(got, shown)}", "write it as a mapping (see docs/spec.md)")
    if kind in ("list_type", "set_type", "tuple_type"):
        example = f", e.g. [{written if written is not None else got}]" if _is_scalar(got) else ""
        return (f"must be a list{_got(got, shown)}", f"write it as a list{example}")
    # anything else: pydantic's sentence, reworded into ours ("Input should be" → "must be")
    msg = re.sub(r"^(Input|Value|String|List|Dictionary|Object) should ", "must ", e["msg"])
    return (f"{msg[:1].lower()}{msg[1:]}{shown}", "correct the value (see docs/spec.md)")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


def _got(value: Any, shown: str) -> str:
    """`` (got 'abc')`` for a scalar, ``, got a list`` for a collection, ``, got nothing`` for null."""
    return shown if _is_scalar(value) else f", got {_kind(value)}"


def _show(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if _is_scalar(value) else None


def _number(value: Any) -> str:
    """``3600.0`` → ``3600``; anything else as it prints."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _allowed_keys(parent: Path_) -> list[str]:
    """The YAML keys accepted at ``parent``, found by walking the models along the path."""
    model: type[BaseModel] | None = Bridge
    skip_key = False  # the previous field was a dict[str, Model]: this element is a map key
    for part in parent:
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        field = _field_by_alias(model, part) if model is not None else None
        if field is None:
            return []
        model = _inner_model(field.annotation)
        skip_key = _is_mapping(field.annotation)
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model is not None else []


def _field_by_alias(model: type[BaseModel], key: str) -> Any:
    for name, f in model.model_fields.items():
        if (f.alias or name) == key:
            return f
    return None


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _is_mapping(annotation: Any) -> bool:
    if getattr(annotation, "__origin__", None) is dict:
        return True
    return any(_is_mapping(a) for a in getattr(annotation, "__args__", ()) or ())


def read_backend_cas(bridge: Bridge, bridge_dir: Path) -> dict[str, bytes]:
    """The PEM of every export's ``backend.tls.caFile`` (relative to the bridge file's folder), by export.

    Raises:
        RenderError: a CA file cannot be read.
    """
    out = {}
    for ex in bridge.spec.exports:
        if ex.declared_backend is None or ex.backend.tls.ca_file is None:
            continue
        path = bridge_dir / ex.backend.tls.ca_file
        try:
            out[ex.name] = path.read_bytes()
        except OSError as e:
            raise RenderError(
                f"export {ex.name!r}: backend.tls.caFile {path} cannot be read ({e.strerror}). Fix: point it at "
                "the PEM of the CA that signed the backend's certificate"
            ) from e
    return out
