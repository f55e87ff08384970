"""A pod's view of two files of ``/etc`` for a process of the control-plane twin (Linux, root).

In a cluster, a proxy's container sees its image's OS trust bundle (where ``pilot-agent`` reads the roots istiod
names as ``file-root:/etc/ssl/certs/ca-certificates.crt`` for TLS to a backend without ``caCertificates``) and the
``/etc/resolv.conf`` the kubelet writes (the cluster's DNS, the pod's search path). The twin gives its proxies the
same two files without a container: ``python -m meshbridge.local.podfs --bind SRC=DST ... -- COMMAND...`` enters a
mount namespace of its own (``unshare(CLONE_NEWNS)``, mounts made private so nothing leaks to the host), bind-mounts
each ``SRC`` over ``DST`` and executes ``COMMAND`` in place (same pid, so a supervisor's signals reach it). The
host's files are never changed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
USAGE = "usage: python -m meshbridge.local.podfs --bind SRC=DST [--bind SRC=DST ...] -- COMMAND [ARG...]"


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def enter(binds: list[tuple[str, str]]) -> None:
    """Enter a private mount namespace and bind-mount each ``(source, target)``.

    Raises:
        OSError: not permitted (not root), or a file is missing.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private in the new namespace")
    for source, target in binds:
        _check(libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind-mounting {source} on {target}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; exits 3 (a configuration that cannot work: the supervisor does not restart it) on a mount error."""
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args:
        print(USAGE, file=sys.stderr)
        return 2
    split = args.index("--")
    options, command = args[:split], args[split + 1 :]
    binds = [tuple(v.split("=", 1)) for flag, v in zip(options[::2], options[1::2], strict=False) if flag == "--bind"]
    if not command or len(binds) * 2 != len(options) or any(len(b) != 2 for b in binds):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        enter([(b[0], b[1]) for b in binds])
    except OSError as e:
        fix = (
            "run 'meshbridge local up --control-plane istiod' as root"
            if e.errno == errno.EPERM
            else "each --bind names an existing file over an existing file ('local down', then 'local up' again)"
        )
        print(f"podfs: {e}. Fix: {fix}", file=sys.stderr)
        return 3
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
