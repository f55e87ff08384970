"""The reliability table on the real control planes (``-m cluster``): leaf rotation, CA rollover and a killed gateway
under the reliability suite's constant load (50 rps, open loop) through the whole istiod-fed path of
:mod:`tests.cluster.controlplane_support`: the app's sidecar, the importer's egress gateway, mutual TLS to the
exporter's gateway, the emulated ALB, the Lambda. Each gateway is upstream Envoy run by upstream pilot-agent, fed by
its mesh's istiod over xDS, its ``credentialName`` Secret streamed by istiod's SDS.

A rotation is the CLI's: ``meshbridge certs rotate --context eks=... --context gke=...`` writes the gateway Secrets
to the suite's API servers, and istiod streams them to the running Envoys. Its check between steps reads every
gateway pod's Envoy through the API server's port-forward, which these servers refuse (no kubelet): each call stops
after its one step, exit 2, saying the Secrets were written and the check could not run. So each step is one call
(``--mesh``, ``--stage``) and the test plays the check: the same comparison (:func:`served_problems`) on each
Envoy's own admin ``/config_dump``.

Figures go to ``$MESHBRIDGE_FIGURES`` as the reliability suite's do (``benchmarks/reliability.py --control-plane
istiod`` builds the table); waits poll what Envoy's admin shows, never a duration.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshbridge.cli.main import main
from meshbridge.kube.envtest import Clusters
from meshbridge.local.controlplane import Agent, Istiod, start_agent
from meshbridge.pki import CertBundle, PkiStore
from meshbridge.render.gatewayapi import served_credential
from meshbridge.verify.served import Role, served_problems
from tests.cluster.admission import wait_until
from tests.cluster.controlplane_support import (
    CREDENTIAL,
    MESH,
    Addresses,
    WholePath,
    alb,
    app_call,
    bridged,
    gateway_ports,
    istiod,
    istiod_gke,
    no_capture,
    secrets,
    whole_path,
)
from tests.cluster.support import Cli
from tests.reliability.conftest import RATE, Load, p99_ms, record, sent_and_failed

pytestmark = [pytest.mark.cluster, pytest.mark.reliability]
# fixtures of the shared module, used here by name
__all__ = ["alb", "bridged", "gateway_ports", "istiod", "istiod_gke"]

ADDRESSES = Addresses(ingress="127.0.78.10", egress="127.0.78.11", app="127.0.78.12")
URL = f"http://{ADDRESSES.app}:80/hello-world"
MODE = "istiod"
"""The ``control_plane`` of every recorded row: the table puts these beside the file-based twin's."""


@pytest.fixture
def path(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
) -> Iterator[WholePath]:
    """The whole path on both istiods, its gateways on ports of their own, warmed by a short load (the Lambda's
    environments start cold)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(no_capture)(local, ADDRESSES.app, ADDRESSES.egress, bridged[1]))
        running = stack.enter_context(whole_path(cli, local, (istiod[0], istiod_gke[0]), tmp_path, ADDRESSES))
        wait_until(lambda: app_call(ADDRESSES.app, "/hello-world")[0] == 200, "the app's call reached the Lambda")
        with Load(URL, seconds=2):
            pass
        yield running


def _dump(agent: Agent) -> dict[str, Any]:
    """Envoy's ``/config_dump`` of its active secrets, as a cluster's check reads it through port-forward."""
    with urllib.request.urlopen(f"{agent.admin_url}/config_dump?mask=dynamic_active_secrets", timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def _stale(cli: Cli, running: WholePath) -> list[str]:
    """How the gateways' served secrets differ from the store's (the check 'certs rotate --context' makes)."""
    bridge, credentials = cli.bridge, PkiStore(cli.state).credentials(cli.bridge)
    gateways: list[tuple[str, Role, Agent]] = [(MESH, "ingress", running.ingress), ("gke", "egress", running.egress)]
    out: list[str] = []
    for mesh, role, agent in gateways:
        name = served_credential(bridge, mesh, role)
        out += served_problems(f"{mesh}/{agent.pod.name}", role, _dump(agent), credentials[mesh], name)
    return out


def _serial(agent: Agent) -> int:
    """The serial of the leaf the gateway's Envoy holds for the bridge's Secret."""
    return CertBundle(secrets(agent)[CREDENTIAL]["cert"]).serial


def _pids(running: WholePath) -> dict[str, int | None]:
    return {"ingress": running.ingress.envoy_pid(), "egress": running.egress.envoy_pid()}


def _rotate_step(cli: Cli, running: WholePath, *args: str) -> None:
    """One step of 'certs rotate --context' (the suite's contexts), then wait until both gateways serve the store."""
    code, _, err = cli("certs", "rotate", *args, "--timeout", "1")
    text = " ".join(err.split())
    assert code == 2 and "step 1 of 1" in text and "was pushed to eks" in text, err
    assert "does not have a host assigned" in text, err  # the check needs a kubelet; the test plays it
    wait_until(lambda: not _stale(cli, running), "both gateways serve the store's certificates")


def test_leaf_rotation_with_certs_rotate_context_loses_no_request(path: WholePath, cli: Cli) -> None:
    """The new leaves reach the same Envoy processes through istiod's SDS: no restart, every request answered."""
    pids, serials = _pids(path), {"ingress": _serial(path.ingress), "egress": _serial(path.egress)}
    with Load(URL, seconds=8) as load:
        t0 = time.monotonic()
        for mesh in (MESH, "gke"):
            _rotate_step(cli, path, "--leaf", "--mesh", mesh)
        served_in = time.monotonic() - t0
    sent, failed = sent_and_failed(load)
    assert (sent, failed) == (int(8 * RATE), 0), load.result
    assert _pids(path) == pids and None not in pids.values()  # the same Envoys
    now = {"ingress": _serial(path.ingress), "egress": _serial(path.egress)}
    assert all(now[g] != serials[g] for g in now), (serials, now)
    record(
        "leaf rotation of both sides",
        control_plane=MODE,
        sent=sent,
        failed=failed,
        rotated_and_served_in_s=round(served_in, 2),
        envoys_restarted=sum(_pids(path)[g] != pid for g, pid in pids.items()),
        p99_ms=p99_ms(load.result),
    )


def test_a_leaf_rotation_without_context_reaches_no_gateway(path: WholePath, cli: Cli) -> None:
    """The twin of the test above: without --context the store holds new leaves, but nothing writes the Secrets, so
    istiod has nothing to stream: the Envoys keep serving the old ones (and the CLI says where to push)."""
    serial = _serial(path.ingress)
    cli.capsys.readouterr()
    code = main(["certs", "rotate", "--leaf", "--mesh", MESH, "-f", str(cli.file), "--state-dir", str(cli.state)])
    shown = cli.capsys.readouterr()
    text = " ".join((shown.out + shown.err).split())
    assert code == 0, text
    assert "reissue the leaves of eks from its current CA pushed nowhere (nothing is running); not checked" in text
    assert "note: nothing is running here; the store was updated. Push with 'meshbridge certs push" in text
    assert _stale(cli, path) != []
    assert _serial(path.ingress) == serial


def test_staged_ca_rollover_with_certs_rotate_context_loses_no_request(path: WholePath, cli: Cli) -> None:
    """Both meshes' CAs rolled over in stages (1: trust both, 2: leaves from the new CA, 3: drop the old), each stage
    of each mesh pushed and served before the next: no restart, every request answered."""
    store = PkiStore(cli.state)
    pids, old_cas = _pids(path), {m: store.require_ca(m).serial for m in (MESH, "gke")}
    with Load(URL, seconds=12) as load:
        t0 = time.monotonic()
        for stage in ("1", "2", "3"):
            for mesh in (MESH, "gke"):
                _rotate_step(cli, path, "--ca", "--mesh", mesh, "--stage", stage)
        served_in = time.monotonic() - t0
    sent, failed = sent_and_failed(load)
    assert (sent, failed) == (int(12 * RATE), 0), load.result
    assert _pids(path) == pids and None not in pids.values()
    assert all(store.require_ca(m).serial != old_cas[m] and store.rollover_stage(m) == 0 for m in old_cas)
    record(
        "staged CA rollover of both meshes (stages 1-3)",
        control_plane=MODE,
        sent=sent,
        failed=failed,
        rotated_and_served_in_s=round(served_in, 2),
        envoys_restarted=sum(_pids(path)[g] != pid for g, pid in pids.items()),
        p99_ms=p99_ms(load.result),
    )


def test_a_rollover_stage_out_of_order_is_refused_and_nothing_reaches_the_gateways(path: WholePath, cli: Cli) -> None:
    """The twin of the test above: stage 2 (leaves from a new CA the peer does not trust yet) before stage 1 is
    refused before anything is written; the gateways keep serving the store as it was."""
    serial = _serial(path.ingress)
    code, _, err = cli("certs", "rotate", "--ca", "--mesh", MESH, "--stage", "2", "--timeout", "1")
    assert code != 0 and "the next stage is 1, not 2" in " ".join(err.split()), err
    assert _stale(cli, path) == [] and _serial(path.ingress) == serial


def _kill(agent: Agent) -> int:
    """SIGKILL the agent's Envoy; its pid."""
    pid = agent.envoy_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def _restart(istiod: Istiod, cli: Cli, local: Clusters, agent: Agent) -> Agent:
    """The gateway container again, as a kubelet restarts it: the same pod, the same folder (its volumes)."""
    with local[MESH].client() as admin:
        return start_agent(istiod, cli.bridge.spec.meshes[MESH], admin, agent.pod, agent.root)


def test_killed_exporter_gateway_restarted_errors_only_during_the_outage(
    path: WholePath, cli: Cli, local: Clusters, istiod: tuple[Istiod, CertBundle]
) -> None:
    """SIGKILL of the exporter's gateway Envoy: pilot-agent exits with it (it does not restart Envoy), the container
    is started again for the same pod, istiod configures the new Envoy, and the app's calls get 200 again."""
    with Load(URL, seconds=8) as load:
        time.sleep(1.5)  # the load runs through the whole path first
        old = _kill(path.ingress)
        killed_at = time.monotonic()
        path.ingress.process.wait(timeout=60)
        exited_in = time.monotonic() - killed_at
        path.ingress = _restart(istiod[0], cli, local, path.ingress)
        restarted_in = time.monotonic() - killed_at
        wait_until(lambda: app_call(ADDRESSES.app, "/hello-world")[0] == 200, "the app's call reached the Lambda again")
        recovered_in = time.monotonic() - killed_at
    sent, failed = sent_and_failed(load)
    assert failed > 0, "the outage must be visible"
    assert failed <= RATE * (recovered_in + 1.0), f"{failed} failures for a {recovered_in:.2f} s outage"
    assert path.ingress.envoy_pid() not in (None, old)
    record(
        "SIGKILL of the exporter gateway",
        control_plane=MODE,
        sent=sent,
        failed=failed,
        errors=load.result.errors if load.result else {},
        agent_exited_in_s=round(exited_in, 2),
        restarted_in_s=round(restarted_in, 2),
        recovered_in_s=round(recovered_in, 2),
        p99_ms=p99_ms(load.result),
    )


def test_killed_exporter_gateway_not_restarted_fails_every_request(path: WholePath) -> None:
    """The twin of the test above: nothing restarts the container (no kubelet), so every call fails."""
    _kill(path.ingress)
    path.ingress.process.wait(timeout=60)  # pilot-agent exits with its Envoy (status 0: it restarts nothing)
    with Load(URL, seconds=2) as load:
        pass
    sent, failed = sent_and_failed(load)
    assert (sent, failed) == (int(2 * RATE), int(2 * RATE)), load.result
    record(
        "SIGKILL of the exporter gateway, not restarted",
        control_plane=MODE,
        sent=sent,
        failed=failed,
        errors=load.result.errors if load.result else {},
        p99_ms=p99_ms(load.result),
    )
