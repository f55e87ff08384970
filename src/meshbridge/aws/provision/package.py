"""The function's deployment package: check the handler file statically, then zip it reproducibly.

The check runs before anything is created in AWS. It parses the file with :mod:`ast` and never imports
it (importing would run the user's module code on this machine). Lambda's Python runtime imports the
module named by ``Handler`` and calls ``<function>(event, context)``; see "Define Lambda function handler
in Python" in the Lambda developer guide.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import zipfile
from pathlib import Path

from meshbridge.aws.provision.state import HandlerPackage
from meshbridge.errors import AwsError

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_MODE = 0o100644  # a regular file readable by everyone: Lambda runs the code as another user


def build_package(handler: str, base_dir: Path) -> HandlerPackage:
    """Check ``FILE.py:FUNCTION`` and build its deployment package.

    Args:
        handler: ``FILE.py:FUNCTION`` (``spec.aws.function.handler``); ``FILE`` is relative to ``base_dir``.
        base_dir: the bridge file's folder.

    Returns:
        The package: the file alone at the zip root, ``Handler`` = ``<file stem>.<FUNCTION>``.

    Raises:
        AwsError: the file is missing or unreadable, is not valid Python, its name is no module name
            Lambda can import, or it does not define ``FUNCTION`` at module level as a plain (not
            ``async``) function accepting ``(event, context)``.
    """
    file_part, _, function = handler.rpartition(":")
    path = (base_dir / file_part).resolve()
    where = f"spec.aws.function.handler {handler!r}"
    try:
        source = path.read_bytes()
    except FileNotFoundError as e:
        raise AwsError(f"{where}: {path} does not exist. Fix: point the handler at the Lambda's Python file") from e
    except OSError as e:
        raise AwsError(f"{where}: cannot read {path} ({e.strerror}). Fix: check the file's permissions") from e
    module = path.stem
    if "." in module or not module:
        raise AwsError(
            f"{where}: Lambda imports the handler as module {module!r}, and a dot in a module name means a "
            "package. Fix: rename the file without dots (e.g. handler.py)"
        )
    _check_defines(source, path, function, where)
    return _zip(path.name, source, f"{module}.{function}", str(path))


def _check_defines(source: bytes, path: Path, function: str, where: str) -> None:
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as e:
        line = getattr(e, "lineno", None)
        at = f"{path}:{line}" if line else str(path)
        msg = getattr(e, "msg", str(e))
        raise AwsError(
            f"{where}: {at}: not valid Python ({msg}); Lambda would fail every invocation with "
            "Runtime.UserCodeSyntaxError. Fix: correct the syntax"
        ) from e
    found = _top_level_binding(tree.body, function)
    if found is None:
        defined = sorted(n.name for n in tree.body if isinstance(n, ast.FunctionDef))
        hint = f" (it defines: {', '.join(defined)})" if defined else " (it defines no function)"
        raise AwsError(
            f"{where}: {path} does not define {function!r} at module level{hint}; Lambda would fail with "
            "Runtime.HandlerNotFound. Fix: define 'def "
            f"{function}(event, context):' in the file or change the handler"
        )
    if isinstance(found, ast.AsyncFunctionDef):
        raise AwsError(
            f"{where}: {path}:{found.lineno}: {function!r} is 'async def'; Lambda's Python runtime calls the "
            "handler synchronously and would get a coroutine back. Fix: make it a plain 'def'"
        )
    if isinstance(found, ast.FunctionDef) and not _accepts_two_positional(found.args):
        raise AwsError(
            f"{where}: {path}:{found.lineno}: {function!r} cannot be called with (event, context), as Lambda "
            f"calls it. Fix: declare it as 'def {function}(event, context):'"
        )


def _top_level_binding(body: list[ast.stmt], name: str) -> ast.stmt | None:
    """The last module-level statement binding ``name`` (def, assignment or import), looking into if/try."""
    found: ast.stmt | None = None
    for node in body:
        if _binds_directly(node, name):
            found = node
        elif isinstance(node, ast.If | ast.Try):
            branches = [node.body, node.orelse]
            if isinstance(node, ast.Try):
                branches += [node.finalbody, *(h.body for h in node.handlers)]
            for branch in branches:
                inner = _top_level_binding(branch, name)
                if inner is not None:
                    found = inner
    return found


def _binds_directly(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(_binds(t, name) for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return node.value is not None and _binds(node.target, name)
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) == name for a in node.names)
    return False


def _binds(target: ast.expr, name: str) -> bool:
    if isinstance(target, ast.Name):
        return target.id == name
    if isinstance(target, ast.Tuple | ast.List):
        return any(_binds(e, name) for e in target.elts)
    return False


def _accepts_two_positional(args: ast.arguments) -> bool:
    positional = len(args.posonlyargs) + len(args.args)
    if args.vararg is None and positional < 2:
        return False
    # parameters beyond the first two must have defaults, or the call (event, context) fails
    required = positional - len(args.defaults)
    kw_required = any(d is None for d in args.kw_defaults)
    return required <= 2 and not kw_required


def _zip(arcname: str, source: bytes, handler: str, source_path: str) -> HandlerPackage:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
        info.external_attr = _MODE << 16
        info.create_system = 3  # unix, so the mode above is honoured
        zf.writestr(info, source)
    data = buf.getvalue()
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    return HandlerPackage(source=source_path, handler=handler, zip_bytes=data, code_sha256=digest)
