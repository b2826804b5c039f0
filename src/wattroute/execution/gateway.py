"""The inference gateway: ``POST /v1/infer/{service}`` forwards a request from a demand point
to a replica at the site the plan's routing chooses.

The site is drawn in proportion to the routing shares of the plan in force for that demand
point, among sites that have a live replica (the next-best share otherwise); the replica is
the next in turn there. On one machine every site is a few microseconds away, so the gateway
*emulates* the network: it waits the modelled round trip between the demand point and the
site (measured inter-region latency, or great-circle distance over fibre) before forwarding,
and reports it apart, labelled ``emulated_network_ms``. End-to-end latency — emulated network,
gateway, queueing and the replica's own time — is measured and held against the service's
SLO.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray

from wattroute.execution.actors import NAMESPACE
from wattroute.execution.errors import NoReplicaError
from wattroute.execution.executor import parse_replica_name
from wattroute.model import Scenario
from wattroute.runtime.records import ServiceRecord

PROBE_WAIT_S = 0.05  # how long a request waits, at most, for new replicas to say they are up


@dataclass(frozen=True)
class InferResult:
    """One answered request; times in milliseconds."""

    service: str
    point: str
    site: str
    output: Any
    emulated_network_ms: float
    service_ms: float
    latency_ms: float
    within_slo: bool


class Gateway:
    """Routes inference requests to replicas on the Ray cluster.

    Parameters
    ----------
    scenario
        The fleet: sites, demand points and the network model.
    address
        The Ray cluster to join when this process is not connected yet (API workers).
    refresh_s
        Seconds a listing of the live replicas is reused.
    seed
        Seed of the site draw (for tests).
    """

    def __init__(
        self,
        scenario: Scenario,
        address: str | None = None,
        refresh_s: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.address = address
        self.refresh_s = refresh_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listed_at = -1e9
        self._replicas: dict[tuple[str, str], list[str]] = {}  # the ready ones
        self._found: dict[tuple[str, str], list[str]] = {}  # every one listed
        self._ready: set[str] = set()
        self._probes: dict[str, Any] = {}  # name -> the pending readiness call
        self._turns: dict[tuple[str, str], itertools.count[int]] = {}
        self._handles: dict[str, Any] = {}
        self._rtt: dict[tuple[str, str], float] = {}
        self._sites = [s.name for s in scenario.sites]
        self._points = {p.name: p for p in scenario.demand_points}

    # -- where to send a request --------------------------------------------------------------

    def rtt_ms(self, point: str, site: str) -> float:
        """Modelled round trip between a demand point and a site, ms."""
        key = (point, site)
        if key not in self._rtt:
            p = self._points[point]
            s = next(x for x in self.scenario.sites if x.name == site)
            matrix = self.scenario.network.rtt_matrix_ms(
                [(p.latitude, p.longitude, p.zone)], [(s.latitude, s.longitude, s.zone)]
            )
            self._rtt[key] = float(matrix[0, 0])
        return self._rtt[key]

    def _connect(self) -> None:
        if not ray.is_initialized():
            ray.init(address=self.address or "auto", namespace=NAMESPACE, log_to_driver=False)

    def _list(self) -> dict[tuple[str, str], list[str]]:
        """Replicas that are ready, by (service, site). A replica is listed (its name is
        registered) as soon as it is created, before it has a place and a model; it is used
        only once it has answered a readiness call, so that no request waits on a replica
        starting up. The listing is reused for ``refresh_s``; pending readiness calls are
        checked at every request."""
        now = time.monotonic()
        with self._lock:
            fresh = now - self._listed_at < self.refresh_s
            if fresh and not self._probes:
                return self._replicas
        if not fresh:
            self._connect()
            found: dict[tuple[str, str], list[str]] = {}
            for entry in ray.util.list_named_actors(all_namespaces=True):
                if entry.get("namespace") != NAMESPACE:
                    continue
                key = parse_replica_name(entry["name"])
                if key is not None:
                    found.setdefault(key, []).append(entry["name"])
            with self._lock:
                self._found = {k: sorted(v) for k, v in found.items()}
                self._listed_at = now
        with self._lock:
            found = self._found
            names = {n for listed in found.values() for n in listed}
            ready = self._probe(names)
            self._replicas = {
                k: [n for n in v if n in ready] for k, v in found.items() if ready.intersection(v)
            }
            return self._replicas

    def _probe(self, names: set[str]) -> set[str]:
        """The replicas among ``names`` that are ready; sends a readiness call to each new one
        and collects the calls that have answered (waiting ``PROBE_WAIT_S`` at most, and only
        when there are new ones). Holds the lock."""
        self._ready &= names
        for name in list(self._probes):
            if name not in names:
                del self._probes[name]
        new = names - self._ready - set(self._probes)
        for name in new:
            with contextlib.suppress(ValueError):  # gone since it was listed
                self._probes[name] = self._handle(name).ready.remote()
        if self._probes:
            refs = list(self._probes.values())
            # A replica that is up answers in a millisecond or two: give new ones that long.
            wait_s = PROBE_WAIT_S if new else 0.0
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=wait_s)
            answered = {ref.hex() for ref in done}
            for name, ref in list(self._probes.items()):
                if ref.hex() not in answered:
                    continue
                del self._probes[name]
                try:
                    ray.get(ref)
                    self._ready.add(name)
                except ray.exceptions.RayError:
                    self._handles.pop(name, None)  # it died starting: probe it anew if listed
        return set(self._ready)

    def _handle(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            handle = ray.get_actor(name, namespace=NAMESPACE)
            self._handles[name] = handle
        return handle

    def choose_site(self, service: str, shares: dict[str, float]) -> str:
        """A site drawn by the routing ``shares`` among those with a replica."""
        replicas = self._list()
        live = {s: w for s, w in shares.items() if w > 0 and replicas.get((service, s))}
        if live:
            sites, weights = zip(*sorted(live.items()), strict=True)
            return self._rng.choices(sites, weights=weights)[0]
        # The plan routes nowhere with a replica (it is being scaled): the best-shared site
        # that has one, then any site that has one.
        for site in sorted(shares, key=lambda s: -shares[s]):
            if replicas.get((service, site)):
                return site
        for service_name, site in replicas:
            if service_name == service:
                return site
        raise NoReplicaError(f"no live replica of {service!r}")

    def _replica(self, service: str, site: str) -> tuple[str, Any]:
        names = self._list().get((service, site)) or []
        if not names:
            raise NoReplicaError(f"no live replica of {service!r} at {site!r}")
        turn = self._turns.setdefault((service, site), itertools.count())
        name = names[next(turn) % len(names)]
        with self._lock:
            return name, self._handle(name)

    # -- answering ---------------------------------------------------------------------------

    async def infer(
        self, service: ServiceRecord, point: str, shares: dict[str, float], payload: Any
    ) -> InferResult:
        """Answer one request from ``point``; ``shares`` is the plan's routing for it."""
        started = time.perf_counter()
        site = await asyncio.to_thread(self.choose_site, service.key, shares)
        rtt = self.rtt_ms(point, site)
        await asyncio.sleep(rtt / 1000.0)  # the emulated network round trip
        name, replica = await asyncio.to_thread(self._replica, service.key, site)
        try:
            answer = await replica.infer.remote(payload)
        except ray.exceptions.RayActorError:
            with self._lock:
                self._listed_at = -1e9  # the replica is gone: list again next time
                self._ready.discard(name)  # its name may come back as a new replica
                self._handles.pop(name, None)
            raise NoReplicaError(f"the replica of {service.name!r} at {site!r} is gone") from None
        latency = (time.perf_counter() - started) * 1000.0
        return InferResult(
            service=service.name,
            point=point,
            site=site,
            output=answer["output"],
            emulated_network_ms=rtt,
            service_ms=float(answer["service_ms"]),
            latency_ms=latency,
            within_slo=latency <= service.latency_slo_ms,
        )
