"""Round-trip network latency between demand points and sites.

A measured matrix between grid zones is used when both ends have a zone that is in it;
otherwise the latency is estimated from the great-circle distance over fibre:

``rtt_ms = 2 * route_factor * distance_km / fibre_km_per_ms + base_ms``

with light in fibre at ~200 km/ms (refractive index ~1.47), fibre routes ``route_factor``
= 1.5 times longer than the great circle, and ``base_ms`` = 1 ms for switching and last-mile
access. These are the :class:`FibreModel` defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from wattroute.model import _checks as check

EARTH_RADIUS_KM = 6371.0088

ZONE_ALIASES: Mapping[str, str] = {
    # Electricity Maps zone codes (and older or regional names) -> the label of the latency
    # matrix's region that sits in them. The matrix is measured between Google Cloud regions,
    # each labelled by a grid zone; a zone is aliased only where that region lies inside it,
    # never to a merely nearby one (those get the distance model).
    "AU-NSW": "AUS-NSW",  # Sydney
    "AU-VIC": "AUS-VIC",  # Melbourne
    "DE-LU": "DE",  # the German-Luxembourg bidding zone (Frankfurt)
    "IN-WE": "IN-MH",  # Western India; its data centres are in Maharashtra (Mumbai)
    "IN-NO": "IN-DL",  # Northern India (Delhi)
    "CL-SIC": "CL-SEN",  # Chile's central grid, part of the national SEN since 2017 (Santiago)
    "BR-SP": "BR-CS",  # Sao Paulo, in Brazil's Central-South subsystem
    "US-NW-BPAT": "US-NW-PACW",  # Bonneville: the Oregon region (The Dalles)
    "US-MIDW-MISO": "US-CENT-SWPP",  # the Iowa region (Council Bluffs) is served by MISO
}


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in decimal degrees, km (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class FibreModel:
    """Latency estimate from distance.

    Parameters
    ----------
    fibre_km_per_ms
        Propagation speed of light in fibre, km per ms.
    route_factor
        Fibre route length / great-circle distance.
    base_ms
        Fixed round-trip overhead (switching, access network), ms.
    """

    fibre_km_per_ms: float = 200.0
    route_factor: float = 1.5
    base_ms: float = 1.0

    def __post_init__(self) -> None:
        check.number(
            "fibre.fibre_km_per_ms",
            self.fibre_km_per_ms,
            "give the speed of light in fibre, km per ms (about 200)",
            above=0,
        )
        check.number(
            "fibre.route_factor",
            self.route_factor,
            "give fibre route length / great-circle distance, 1 or more (about 1.5)",
            least=1,
        )
        check.number(
            "fibre.base_ms", self.base_ms, "give the fixed round-trip overhead in ms", least=0
        )

    def rtt_ms(self, distance_km: float) -> float:
        """Round-trip time over ``distance_km`` of great-circle distance, ms."""
        return 2.0 * self.route_factor * distance_km / self.fibre_km_per_ms + self.base_ms


@dataclass(frozen=True)
class Network:
    """Latency between places.

    Parameters
    ----------
    matrix_ms
        Measured round-trip latency in ms keyed by (origin zone, destination zone).
    fibre
        The distance-based model used where the matrix has no entry.
    """

    matrix_ms: Mapping[tuple[str, str], float] = field(default_factory=dict)
    fibre: FibreModel = FibreModel()

    def __post_init__(self) -> None:
        for (a, b), ms in self.matrix_ms.items():
            check.number(
                f"network.matrix_ms[{a}, {b}]",
                ms,
                "give the measured round-trip latency in ms, 0 or more",
                least=0,
            )

    @property
    def zones(self) -> frozenset[str]:
        """The zones the measured matrix covers."""
        return frozenset(zone for pair in self.matrix_ms for zone in pair)

    def knows(self, zone: str | None) -> bool:
        """Whether latencies from ``zone`` (or the matrix region it is an alias of) are
        measured; other places get the distance model."""
        return zone is not None and ZONE_ALIASES.get(zone, zone) in self.zones

    def measured_ms(self, zone_a: str | None, zone_b: str | None) -> float | None:
        """Measured latency between two zones, or ``None`` if either is unknown."""
        if zone_a is None or zone_b is None:
            return None
        a = ZONE_ALIASES.get(zone_a, zone_a)
        b = ZONE_ALIASES.get(zone_b, zone_b)
        value = self.matrix_ms.get((a, b))
        if value is None:
            value = self.matrix_ms.get((b, a))
        return value

    def rtt_ms(
        self,
        lat_a: float,
        lon_a: float,
        zone_a: str | None,
        lat_b: float,
        lon_b: float,
        zone_b: str | None,
    ) -> tuple[float, str]:
        """Round-trip latency between two places, ms, and how it was obtained.

        Returns ``(latency_ms, "measured")`` from the matrix when both zones are in it,
        else ``(latency_ms, "great-circle")``.
        """
        measured = self.measured_ms(zone_a, zone_b)
        if measured is not None:
            return measured, "measured"
        return self.fibre.rtt_ms(great_circle_km(lat_a, lon_a, lat_b, lon_b)), "great-circle"

    def rtt_matrix_ms(
        self,
        origins: list[tuple[float, float, str | None]],
        destinations: list[tuple[float, float, str | None]],
    ) -> np.ndarray:
        """Latency from each origin to each destination, ms, shape (origins, destinations)."""
        out = np.empty((len(origins), len(destinations)))
        for i, (lat_a, lon_a, zone_a) in enumerate(origins):
            for j, (lat_b, lon_b, zone_b) in enumerate(destinations):
                out[i, j] = self.rtt_ms(lat_a, lon_a, zone_a, lat_b, lon_b, zone_b)[0]
        return out
