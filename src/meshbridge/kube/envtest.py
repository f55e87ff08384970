"""Real Kubernetes API servers on this machine, one per mesh, as controller-runtime's envtest runs them.

Each cluster is an etcd and a kube-apiserver built from source (``tools/kube``, Kubernetes and etcd at the
releases pinned in its ``go.mod``; built once and cached like every Go tool, :mod:`meshbridge.gotools`),
listening on loopback ports only, with TLS everywhere:

* etcd serves clients over TLS and requires a client certificate (the API server's);
* kube-apiserver serves TLS with a certificate of the cluster's own CA, authenticates static tokens and
  client certificates of that CA, authorizes with RBAC, and signs service-account tokens with a key of its
  own (``--service-account-*``); like envtest, the ``ServiceAccount`` admission plugin is off (no
  controller-manager creates default service accounts).

There is no controller-manager, scheduler or kubelet: Pods never run, Deployments create no Pods, Services
get no EndpointSlices, and port-forward and exec fail after authorization. What an Istio installation would
leave in a cluster is written directly (:mod:`meshbridge.kube.istio_standin`), its statuses through the
``status`` subresources.

The kubeconfig written for the clusters has, per mesh ``M``: context ``M`` (user ``meshbridge``, a bearer
token), ``M-cert`` (a client certificate of group ``meshbridge-operators``) and ``M-admin`` (a token in
``system:masters``). Once a bridge is installed, the first two have exactly the permissions ``meshbridge render
--rbac`` prints for it (:func:`permissions`, :func:`grant_permissions`); before, none.

Everything a run writes (keys, etcd's data, logs, the kubeconfig) stays under one folder, removed by
:meth:`Clusters.stop`. ``python -m meshbridge.kube.envtest up|down|env`` is the command line
(``make clusters-up``, ``make clusters-down``).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes.client import Configuration

from meshbridge.fsutil import write_atomic
from meshbridge.gotools import ToolUnavailable
from meshbridge.kube.binaries import KubeServersUnavailable, ensure_binaries
from meshbridge.kube.client import Document, KubeClient, apply_raw
from meshbridge.ports import free_ports
from meshbridge.render.rbac import RBAC_API, Subject, render_rbac
from meshbridge.spec.models import Bridge

Progress = Callable[[str], None]

USER = "meshbridge"
"""The token user of context ``<mesh>``: the permissions ``meshbridge render --rbac`` prints, nothing more."""
CERT_USER = "meshbridge-cert"
CERT_GROUP = "meshbridge-operators"
"""The client-certificate user of context ``<mesh>-cert`` and its group, bound to the same permissions."""
ADMIN = "envtest-admin"
SERVICE_CIDR = "10.0.0.0/24"
START_TIMEOUT = 120.0
"""Seconds a cluster may take to answer ``/readyz`` (two API servers start in ~10-20 s on 2 cores)."""
STOP_TIMEOUT = 15.0
STATE_FILE = "clusters.json"


# -- certificates ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        crt, key = folder / f"{name}.crt", folder / f"{name}.key"
        write_atomic(crt, self.cert.public_bytes(serialization.Encoding.PEM))
        write_atomic(key, _key_pem(self.key), mode=0o600)
        return crt, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(
    cn: str, *, ca: _Issued | None = None, org: str | None = None, server: bool = False, client: bool = False
) -> _Issued:
    """A CA (``ca`` is ``None``) or a leaf signed by ``ca``: EC P-256, valid for a day (a test run)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca.cert.subject if ca else _name(cn, org))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if ca is None:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        ekus = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc")]
            sans += [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            sans += [x509.IPAddress(ipaddress.IPv4Network(SERVICE_CIDR)[1])]  # the 'kubernetes' Service
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key if ca else key, hashes.SHA256())
    return _Issued(cert, key)


# -- one cluster -----------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """One etcd and one kube-apiserver (a mesh's cluster), and the files they use.

    Attributes:
        mesh: the mesh it plays (``eks``); the kubeconfig's contexts are named after it.
        root: its folder (keys, etcd's data, logs).
        etcd_port: etcd's client port on 127.0.0.1.
        port: kube-apiserver's secure port on 127.0.0.1.
        admin_token: the bearer token of ``system:masters``.
        user_token: the bearer token of :data:`USER`.
        pids: the processes, ``{"etcd": pid, "kube-apiserver": pid}``.
        exes: the binary each process runs (a recorded pid is signalled only while it still runs that binary).
    """

    mesh: str
    root: Path
    etcd_port: int
    port: int
    admin_token: str
    user_token: str
    pids: dict[str, int] = field(default_factory=dict)
    exes: dict[str, str] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """The API server's URL."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def ca_file(self) -> Path:
        """The cluster's CA (it signs the serving certificates and the client certificates)."""
        return self.pki / "ca.crt"

    def configuration(self, *, admin: bool = True) -> Configuration:
        """A client configuration for this cluster: the admin's token, or the :data:`USER`'s."""
        c = Configuration()
        c.host = self.url
        c.ssl_ca_cert = str(self.ca_file)
        c.verify_ssl = True
        c.api_key = {"BearerToken": self.admin_token if admin else self.user_token}
        c.api_key_prefix = {"BearerToken": "Bearer"}
        return c

    def client(self, *, admin: bool = True, request_timeout: float = 30.0) -> KubeClient:
        """A :class:`KubeClient` as the admin (``system:masters``) or as :data:`USER`."""
        name = f"{self.mesh}-admin" if admin else self.mesh
        return KubeClient.from_configuration(self.configuration(admin=admin), name, request_timeout=request_timeout)

    def log(self, process: str) -> Path:
        """The log file of ``etcd`` or ``kube-apiserver``."""
        return self.root / f"{process}.log"

    def log_tail(self, process: str, lines: int = 15) -> str:
        try:
            text = self.log(process).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def running(self) -> bool:
        """True while both processes run."""
        return all(_alive(pid) for pid in self.pids.values()) and len(self.pids) == 2

    def to_json(self) -> dict[str, Any]:
        return {
            "mesh": self.mesh,
            "root": str(self.root),
            "etcd_port": self.etcd_port,
            "port": self.port,
            "admin_token": self.admin_token,
            "user_token": self.user_token,
            "pids": self.pids,
            "exes": self.exes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cluster:
        return cls(
            str(data["mesh"]),
            Path(data["root"]),
            int(data["etcd_port"]),
            int(data["port"]),
            str(data["admin_token"]),
            str(data["user_token"]),
            {str(k): int(v) for k, v in dict(data.get("pids") or {}).items()},
            {str(k): str(v) for k, v in dict(data.get("exes") or {}).items()},
        )


def _prepare(mesh: str, root: Path) -> Cluster:
    """Keys, certificates and token file of one cluster under ``root``; nothing runs yet."""
    pki = root / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = _issue(f"{mesh}-envtest-ca")
    ca.write(pki, "ca")
    _issue("etcd", ca=ca, server=True, client=True).write(pki, "etcd")
    _issue("kube-apiserver-etcd-client", ca=ca, client=True).write(pki, "etcd-client")
    _issue("kube-apiserver", ca=ca, server=True).write(pki, "apiserver")
    _issue(CERT_USER, ca=ca, org=CERT_GROUP, client=True).write(pki, "user")
    sa = ec.generate_private_key(ec.SECP256R1())
    write_atomic(pki / "sa.key", _key_pem(sa), mode=0o600)
    write_atomic(
        pki / "sa.pub",
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    admin_token, user_token = secrets.token_hex(24), secrets.token_hex(24)
    write_atomic(
        pki / "tokens.csv",
        f'{admin_token},{ADMIN},uid-{ADMIN},"system:masters"\n{user_token},{USER},uid-{USER}\n',
        mode=0o600,
    )
    etcd_port, port = free_ports(2)
    return Cluster(mesh, root, etcd_port, port, admin_token, user_token)


def _etcd_args(binary: Path, c: Cluster) -> list[str]:
    pki = c.pki
    client = f"https://127.0.0.1:{c.etcd_port}"
    return [
        str(binary),
        f"--name={c.mesh}",
        f"--data-dir={c.root / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        "--listen-peer-urls=http://127.0.0.1:0",  # a single member: no peer ever connects (envtest does the same)
        f"--cert-file={pki / 'etcd.crt'}",
        f"--key-file={pki / 'etcd.key'}",
        f"--trusted-ca-file={pki / 'ca.crt'}",
        "--client-cert-auth=true",
        "--unsafe-no-fsync=true",  # a throw-away store: no fsync per write (envtest's advice for tests)
        "--log-level=warn",
    ]


def _apiserver_args(binary: Path, c: Cluster) -> list[str]:
    pki = c.pki
    return [
        str(binary),
        f"--etcd-servers=https://127.0.0.1:{c.etcd_port}",
        f"--etcd-cafile={pki / 'ca.crt'}",
        f"--etcd-certfile={pki / 'etcd-client.crt'}",
        f"--etcd-keyfile={pki / 'etcd-client.key'}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--endpoint-reconciler-type=none",  # 1.37 refuses a loopback address for the 'kubernetes' Endpoints
        f"--secure-port={c.port}",
        f"--cert-dir={c.root / 'certs'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer=https://127.0.0.1:{c.port}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--disable-admission-plugins=ServiceAccount",  # no controller-manager makes default service accounts
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a killed test
    run leaves no server behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def _spawn(args: list[str], log: Path, *, detach: bool) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "KUBE"))}
    env["TMPDIR"] = str(log.parent / "tmp")  # nothing of theirs in the system's temporary folder either
    (log.parent / "tmp").mkdir(exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches the caller, who stops them in order
            preexec_fn=None if detach else _die_with_parent,
        )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _ready(c: Cluster) -> tuple[bool, str]:
    """``GET /readyz`` with the admin's token: ``(ready, why not)``."""
    ctx = ssl.create_default_context(cafile=str(c.ca_file))
    req = urllib.request.Request(f"{c.url}/readyz", headers={"Authorization": f"Bearer {c.admin_token}"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            return resp.status == 200, ""
    except urllib.error.HTTPError as e:
        return False, f"{e.code} {e.read()[:300].decode(errors='replace')}"
    except (OSError, ssl.SSLError) as e:
        return False, str(e)


# -- the clusters of a run -------------------------------------------------------------------------------


@dataclass
class Clusters:
    """The clusters of one run (one per mesh), their kubeconfig, and how to stop them.

    Attributes:
        root: the folder holding everything of the run.
        clusters: by mesh.
        kubeconfig: the kubeconfig file (contexts ``M``, ``M-cert``, ``M-admin`` per mesh ``M``).
    """

    root: Path
    clusters: dict[str, Cluster]
    kubeconfig: Path

    def __getitem__(self, mesh: str) -> Cluster:
        return self.clusters[mesh]

    def contexts(self, suffix: str = "") -> dict[str, str]:
        """The context of each mesh (``suffix``: ``""`` the token user, ``-cert``, ``-admin``)."""
        return {m: f"{m}{suffix}" for m in self.clusters}

    def save(self) -> None:
        """Write the run's state (ports, tokens, pids) for :func:`stop_recorded` and ``env``."""
        data = {"kubeconfig": str(self.kubeconfig), "clusters": [c.to_json() for c in self.clusters.values()]}
        write_atomic(self.root / STATE_FILE, json.dumps(data, indent=2), mode=0o600)

    @classmethod
    def load(cls, root: Path) -> Clusters:
        """The run recorded in ``root`` (by :meth:`save`).

        Raises:
            KubeServersUnavailable: nothing is recorded there.
        """
        try:
            data = json.loads((root / STATE_FILE).read_text())
        except (OSError, ValueError) as e:
            raise KubeServersUnavailable(
                f"no clusters recorded in {root} ({e}); start them with 'make clusters-up'"
            ) from e
        clusters = {c["mesh"]: Cluster.from_json(c) for c in data["clusters"]}
        return cls(root, clusters, Path(data["kubeconfig"]))

    def stop(self, *, remove: bool = True) -> list[str]:
        """Stop every process (the API servers, then etcd: SIGTERM, then SIGKILL after a grace period), wait
        until each is gone, and remove the run's folder (keys, data, logs) unless ``remove`` is false.

        Returns:
            One line per process that had to be killed, or was gone already (nothing when all went well).
        """
        notes: list[str] = []
        for name in ("kube-apiserver", "etcd"):
            for c in self.clusters.values():
                pid = c.pids.get(name)
                if pid is None:
                    continue
                proc = c._procs.get(name)
                exe = c.exes.get(name) or _command_of(pid, name)  # a state file without exes: by the binary's name
                notes += _stop_process(pid, proc, f"{c.mesh} {name}", exe)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
        return notes


def _stop_process(pid: int, proc: subprocess.Popen[bytes] | None, what: str, exe: str) -> list[str]:
    """SIGTERM ``pid`` (only if it still runs ``exe``), wait, SIGKILL after :data:`STOP_TIMEOUT`; reap it."""
    if proc is None and not _runs(pid, exe):
        return []  # gone already (or the pid is someone else's now): never signal a stranger
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return []
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return []
        if proc is None and not _alive(pid):
            return []
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=STOP_TIMEOUT)
    return [f"{what} (pid {pid}) did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM and was killed"]


def _command_of(pid: int, name: str) -> str:
    """The binary ``pid`` runs when it is ``name`` (``kube-apiserver``, ``etcd``, or its cached ``<name>-<hash>``),
    else ``""``."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return ""
    base = Path(argv0).name.removesuffix(" (deleted)")
    return argv0 if base == name or base.startswith(f"{name}-") else ""


def _runs(pid: int, exe: str) -> bool:
    """True when ``pid`` is alive and runs the binary ``exe`` (its first argument, as it was started)."""
    if not _alive(pid) or not exe:
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return argv0 == exe


def start_clusters(
    meshes: Sequence[str],
    root: Path,
    *,
    binaries: Mapping[str, Path] | None = None,
    detach: bool = False,
    progress: Progress | None = None,
    timeout: float = START_TIMEOUT,
) -> Clusters:
    """Start an etcd and a kube-apiserver per mesh under ``root``, wait until each answers ``/readyz`` and write
    the kubeconfig. :data:`USER` and :data:`CERT_GROUP` may do nothing yet: :func:`grant_permissions` gives them
    a bridge's (once its namespaces exist).

    Args:
        meshes: the meshes (one cluster each).
        root: a folder of the run's own (created; everything goes under it).
        binaries: ``kube-apiserver`` and ``etcd`` (default: :func:`ensure_binaries`).
        detach: the processes outlive this one (``make clusters-up``); otherwise they are killed when it dies.
        progress: receives one line per step.
        timeout: seconds each cluster may take to become ready.

    Raises:
        KubeServersUnavailable: the binaries cannot be had, or a cluster did not become ready (its logs'
            last lines are quoted); whatever had started is stopped and ``root`` removed.
    """
    say = progress or (lambda _: None)
    bins = dict(binaries or ensure_binaries(progress))
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    run = Clusters(root, {}, root / "kubeconfig")
    try:
        for mesh in meshes:
            c = _prepare(mesh, root / mesh)
            run.clusters[mesh] = c
            for name, args in (
                ("etcd", _etcd_args(bins["etcd"], c)),
                ("kube-apiserver", _apiserver_args(bins["kube-apiserver"], c)),
            ):
                proc = _spawn(args, c.log(name), detach=detach)
                c._procs[name] = proc
                c.pids[name] = proc.pid
                c.exes[name] = args[0]
            say(f"clusters: {mesh}: etcd on 127.0.0.1:{c.etcd_port}, kube-apiserver on {c.url}")
        run.save()
        start = time.monotonic()
        for c in run.clusters.values():
            _wait_ready(c, start + timeout)
            say(f"clusters: {c.mesh}: ready ({time.monotonic() - start:.1f} s)")
        write_kubeconfig(run)
    except BaseException:
        run.stop()
        raise
    return run


def _wait_ready(c: Cluster, deadline: float) -> None:
    why = ""
    while time.monotonic() < deadline:
        for name, proc in c._procs.items():
            if proc.poll() is not None:
                raise KubeServersUnavailable(
                    f"cluster {c.mesh}: {name} exited with status {proc.returncode} while starting; "
                    f"the end of its log ({c.log(name)}):\n{c.log_tail(name)}"
                )
        ok, why = _ready(c)
        if ok:
            return
        time.sleep(0.25)
    raise KubeServersUnavailable(
        f"cluster {c.mesh}: kube-apiserver did not answer /readyz in time (last: {why}); the end of its log:\n"
        f"{c.log_tail('kube-apiserver')}"
    )


def write_kubeconfig(run: Clusters) -> Path:
    """The kubeconfig of ``run``: per mesh ``M``, contexts ``M`` (token), ``M-cert`` (client certificate) and
    ``M-admin`` (``system:masters``); no current context (each command names its contexts)."""
    clusters, users, contexts = [], [], []
    for m, c in run.clusters.items():
        clusters.append({"name": m, "cluster": {"server": c.url, "certificate-authority": str(c.ca_file)}})
        users += [
            {"name": f"{m}-{USER}", "user": {"token": c.user_token}},
            {
                "name": f"{m}-{CERT_USER}",
                "user": {"client-certificate": str(c.pki / "user.crt"), "client-key": str(c.pki / "user.key")},
            },
            {"name": f"{m}-admin", "user": {"token": c.admin_token}},
        ]
        contexts += [
            {"name": m, "context": {"cluster": m, "user": f"{m}-{USER}"}},
            {"name": f"{m}-cert", "context": {"cluster": m, "user": f"{m}-{CERT_USER}"}},
            {"name": f"{m}-admin", "context": {"cluster": m, "user": f"{m}-admin"}},
        ]
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": clusters, "users": users, "contexts": contexts}
    write_atomic(run.kubeconfig, yaml.safe_dump(doc, sort_keys=False), mode=0o600)
    return run.kubeconfig


# -- permissions -----------------------------------------------------------------------------------------

SUBJECTS = (Subject("User", USER), Subject("Group", CERT_GROUP))
"""Whom the clusters' RBAC binds: the token user and the client-certificate users' group."""


def permissions(bridge: Bridge, mesh: str) -> list[Document]:
    """What ``meshbridge render --rbac --mesh MESH --subject User:meshbridge --subject Group:meshbridge-operators``
    prints for ``bridge``: a ClusterRole, a Role per namespace the bridge uses, and their bindings."""
    return list(render_rbac(bridge, list(SUBJECTS))[mesh])


def grant_permissions(admin: KubeClient, documents: Sequence[Mapping[str, Any]]) -> None:
    """Server-side apply of RBAC ``documents`` (:func:`permissions`, or a copy a test changed) as the admin.

    A rule or verb left out of a document that was applied before is removed from the server (``rules`` is an
    atomic list, owned by this one field manager); a document left out is left as it is.
    """
    for doc in documents:
        md = doc["metadata"]
        where = f"namespaces/{md['namespace']}/" if md.get("namespace") else ""
        apply_raw(admin, f"/apis/{RBAC_API}/{where}{str(doc['kind']).lower()}s/{md['name']}", doc, manager="envtest")


# -- the command line ------------------------------------------------------------------------------------

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / ".clusters"
"""``make clusters-up``'s folder: ``.clusters/`` in the checkout (ignored by git; removed by ``clusters-down``)."""


@contextlib.contextmanager
def running(
    meshes: Sequence[str], root: Path, *, progress: Progress | None = None, binaries: Mapping[str, Path] | None = None
) -> Iterator[Clusters]:
    """Clusters for the block's duration; stopped (and ``root`` removed) when it ends, however it ends."""
    run = start_clusters(meshes, root, binaries=binaries, progress=progress)
    try:
        yield run
    finally:
        run.stop()


def ready_plan(file: Path, kubeconfig: Path, meshes: list[str]) -> str:
    """What ``make clusters-up`` prints once the servers run: the commands to type next, with the kubeconfig and
    a ``--context`` per mesh. No kubelet runs here, so the gateway pods are never scheduled on a node: apply's
    wait for them to serve would only fail ('does not have a host assigned'); the plan says ``--no-wait``."""
    options = f"--kubeconfig {kubeconfig} " + " ".join(f"--context {m}={m}" for m in meshes)
    return (
        f"clusters-up: ready. KUBECONFIG={kubeconfig}\n"
        f"  meshbridge certs issue -f {file}   # once: the gateways' certificates\n"
        f"  meshbridge plan -f {file} {options}\n"
        f"  meshbridge apply -f {file} {options} --no-wait   # no kubelet on these servers: the gateway pods "
        "are never scheduled on a node, so apply cannot wait for them to serve\n"
        f"  contexts: {', '.join(f'{m}, {m}-cert, {m}-admin' for m in meshes)}; stop with 'make clusters-down'"
    )


def _main(argv: list[str]) -> int:
    import argparse

    from meshbridge.kube.istio_standin import install_bridge
    from meshbridge.spec import load_bridge

    parser = argparse.ArgumentParser(prog="python -m meshbridge.kube.envtest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="start a cluster per mesh, install Istio's CRDs and an Istio stand-in, grant 'render --rbac'"
    )
    up.add_argument(
        "-f", "--file", type=Path, default=Path(__file__).resolve().parents[3] / "examples" / "seed" / "bridge.yaml"
    )
    up.add_argument("--dir", type=Path, default=DEFAULT_ROOT)
    down = sub.add_parser("down", help="stop the clusters 'up' started and remove their folder")
    down.add_argument("--dir", type=Path, default=DEFAULT_ROOT)
    env = sub.add_parser("env", help="print the shell line that points kubectl and meshbridge at the clusters")
    env.add_argument("--dir", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        if args.command == "down":
            try:
                run = Clusters.load(args.dir)
            except KubeServersUnavailable as e:
                say(f"clusters-down: nothing to stop ({e})")
                return 0
            for note in run.stop():
                say(f"clusters-down: {note}")
            say(f"clusters-down: stopped {', '.join(run.clusters)}; removed {args.dir}")
            return 0
        if args.command == "env":
            run = Clusters.load(args.dir)
            print(f"export KUBECONFIG={run.kubeconfig}")
            return 0
        if (args.dir / STATE_FILE).exists():
            say(f"clusters-up: {args.dir} already holds clusters; run 'make clusters-down' first")
            return 2
        bridge = load_bridge(args.file)
        run = start_clusters(list(bridge.spec.meshes), args.dir, detach=True, progress=say)
        try:
            for mesh, c in run.clusters.items():
                with c.client() as admin:
                    install_bridge(bridge, mesh, admin, progress=say)
                    grant_permissions(admin, permissions(bridge, mesh))
        except BaseException:
            run.stop()
            raise
        say(ready_plan(args.file, run.kubeconfig, list(run.clusters)))
        return 0
    except ToolUnavailable as e:
        say(str(e))
        return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
