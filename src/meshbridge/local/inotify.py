"""inotify instances: each Envoy of the twin takes one per xDS file it watches, and Linux caps them per user.

Envoy's file-based subscriptions (``path_config_source``: LDS, CDS, each RDS, EDS and SDS file) each create a
filesystem watcher, one ``inotify_init`` each (Envoy ``source/common/filesystem/inotify/watcher_impl.cc``).
The kernel allows ``fs.inotify.max_user_instances`` per user (128 by default on many distributions), shared
with everything else the user runs (editors, IDEs, other twins). Past it Envoy cannot start and says only
``Too many open files``; ``local up`` checks the budget first and says what to change.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from meshbridge.jsontree import mappings

LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_instances")
PER_PROXY_MARGIN = 1  # a gateway was seen to hold one watcher more than it has files (Envoy 1.40)
FIX = "sudo sysctl fs.inotify.max_user_instances=1024"


def watched_files(documents: Iterable[Any]) -> int:
    """How many distinct files the ``path_config_source`` entries of ``documents`` (one proxy's bootstrap and
    xDS documents, JSON-shaped) name: the inotify instances that proxy's Envoy takes, without the margin."""
    paths = {
        str(d["path_config_source"]["path"])
        for doc in documents
        for d in mappings(doc)
        if isinstance(d.get("path_config_source"), dict) and "path" in d["path_config_source"]
    }
    return len(paths)


def budget_problem(needed: int, limit: int, in_use: int) -> str | None:
    """Why ``needed`` more inotify instances do not fit, or ``None`` when they do (pure).

    Args:
        needed: instances the twin's proxies will take.
        limit: ``fs.inotify.max_user_instances``.
        in_use: instances this user's processes hold now.
    """
    left = limit - in_use
    if needed <= left:
        return None
    return (
        f"the local twin's Envoys need {needed} inotify instances (one per xDS file each one watches), but this "
        f"user has {max(left, 0)} left (fs.inotify.max_user_instances={limit}, {in_use} in use by this user's "
        f"processes: other twins, editors). Fix: {FIX} (to keep it: a file in /etc/sysctl.d), or stop other "
        "twins with 'meshbridge local down' in their folders"
    )


def instances() -> tuple[int, int] | None:
    """``(limit, in use by this user)``, or ``None`` where Linux's ``/proc`` does not say.

    In use is counted over the processes of this user that ``/proc`` lets us read (``anon_inode:inotify``
    file descriptors); the kernel counts per real user id.
    """
    try:
        limit = int(LIMIT_FILE.read_text())
    except (OSError, ValueError):
        return None
    uid = os.getuid()
    in_use = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with os.scandir(f"/proc/{entry.name}/fd") as fds:
                in_use += sum(1 for fd in fds if _is_inotify(fd.path))
        except OSError:  # the process ended, or its fds are not ours to read
            continue
    return limit, in_use


def _is_inotify(fd_link: str) -> bool:
    try:
        return os.readlink(fd_link) == "anon_inode:inotify"
    except OSError:  # closed meanwhile
        return False
