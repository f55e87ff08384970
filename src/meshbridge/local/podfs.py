"""A pod's view of two files of ``/etc`` for a process of the control-plane twin (Linux, root).

In a cluster, a proxy's container sees its image's OS trust bundle (where ``pilot-agent`` reads the roots istiod
names as ``file-root:/etc/ssl/certs/ca-certificates.crt`` for TLS to a backend without ``caCertificates``) and the
``/etc/resolv.conf`` the kubelet writes (the cluster's DNS, the pod's search path). The twin gives its proxies the
same two files without a container: ``python -m meshbridge.local.podfs --bind SRC=DST ... -- COMMAND...`` enters a
mount namespace of its own (``unshare(CLONE_NEWNS)``, mounts made private so nothing leaks to the host), bind-mounts
each ``SRC`` over ``DST``, with ``--user UID`` becomes that user (a gateway's ``runAsUser``, Istio's 1337), and
executes ``COMMAND`` in place (same pid, so a supervisor's signals reach it). The host's files are never changed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
USAGE = (
    "usage: python -m meshbridge.local.podfs [--user UID] [--chdir DIR] --bind SRC=DST [--bind SRC=DST ...] -- "
    "COMMAND [ARG...]"
)


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


def become(uid: int) -> None:
    """Drop to ``uid`` (its own group, no supplementary groups), as a container's ``runAsUser``; the parent-death
    signal, which the kernel clears on a change of credentials, is set again."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exits 3 (a configuration that cannot work: the supervisor does not restart it) on a mount error.

    ``--chdir DIR`` enters ``DIR`` once the binds are made; ``--user UID`` runs ``COMMAND`` as ``UID`` (opened as root
    first, so a binary in a folder only root may enter, a build cache under ``/root``, still runs).
    """
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args:
        print(USAGE, file=sys.stderr)
        return 2
    split = args.index("--")
    options, command = args[:split], args[split + 1 :]
    pairs = list(zip(options[::2], options[1::2], strict=False))
    binds = [tuple(v.split("=", 1)) for flag, v in pairs if flag == "--bind"]
    users = [int(v) for flag, v in pairs if flag == "--user" and v.isdigit()]
    folders = [v for flag, v in pairs if flag == "--chdir"]
    if not command or (len(binds) + len(users) + len(folders)) * 2 != len(options) or any(len(b) != 2 for b in binds):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        enter([(b[0], b[1]) for b in binds])
        for folder in folders:
            os.chdir(folder)
        exe = os.open(command[0], os.O_RDONLY)
        for uid in users:
            become(uid)
    except OSError as e:
        print(f"podfs: {e}. Fix: run 'meshbridge local up --control-plane istiod' as root", file=sys.stderr)
        return 3
    os.execv(f"/proc/self/fd/{exe}", command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
