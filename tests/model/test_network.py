"""Network latency: measured where both zones are known, great-circle over fibre otherwise."""

from __future__ import annotations

import pytest

from tests.builders import SHARED_DATA, needs_shared_data
from wattroute.iotools import read_latency_matrix
from wattroute.model import FibreModel, Network, great_circle_km
from wattroute.model.network import ZONE_ALIASES


def test_great_circle_distance_of_known_city_pairs():
    # London - New York is about 5,570 km; a quarter of the equator is 10,008 km.
    assert great_circle_km(51.5074, -0.1278, 40.7128, -74.0060) == pytest.approx(5570, rel=0.01)
    assert great_circle_km(0, 0, 0, 90) == pytest.approx(10007.5, rel=1e-3)
    assert great_circle_km(10, 10, 10, 10) == 0.0


def test_fibre_model_constants():
    model = FibreModel()
    # 1,000 km: 2 x 1.5 x 1000 / 200 + 1 = 16 ms
    assert model.rtt_ms(1000.0) == pytest.approx(16.0)
    assert model.rtt_ms(0.0) == pytest.approx(1.0)


def test_measured_matrix_wins_and_aliases_align_zone_codes():
    net = Network(matrix_ms={("DE", "GB"): 14.0, ("AUS-NSW", "SG"): 90.0})
    ms, how = net.rtt_ms(50.1, 8.7, "DE-LU", 51.5, -0.1, "GB")
    assert (ms, how) == (14.0, "measured")
    ms, how = net.rtt_ms(1.3, 103.8, "SG", -33.9, 151.2, "AU-NSW")  # either direction
    assert (ms, how) == (90.0, "measured")
    ms, how = net.rtt_ms(50.1, 8.7, None, 51.5, -0.1, "GB")
    assert how == "great-circle"
    assert ms == pytest.approx(FibreModel().rtt_ms(great_circle_km(50.1, 8.7, 51.5, -0.1)))


@needs_shared_data()
def test_real_matrix_has_plausible_latencies():
    net = Network(
        matrix_ms=read_latency_matrix(SHARED_DATA / "network" / "latency_ms_between_zones.csv")
    )
    same, _ = net.rtt_ms(37.4, -122.0, "US-CAL-CISO", 37.4, -122.0, "US-CAL-CISO")
    transpacific, how = net.rtt_ms(37.4, -122.0, "US-CAL-CISO", 35.7, 139.7, "JP-TK")
    assert how == "measured"
    assert same < 10 < 80 < transpacific < 150
    # New York is not in the matrix: great circle from Ashburn's zone
    _, how = net.rtt_ms(40.7, -74.0, "US-NY-NYIS", 39.0, -77.5, "US-MIDA-PJM")
    assert how == "great-circle"


@needs_shared_data()
def test_every_zone_of_the_grid_data_and_the_aliased_codes_are_measured():
    """The zones the grid data covers (but New York, where no measured region is), and the
    codes aliased to the matrix's regions, all have measured latencies; a zone the matrix does
    not cover is not claimed to."""
    net = Network(read_latency_matrix(SHARED_DATA / "network" / "latency_ms_between_zones.csv"))
    grid_zones = {path.stem.rsplit("_", 1)[0] for path in (SHARED_DATA / "grid").glob("*.csv")}
    assert grid_zones, "no grid data found"
    unknown_grid_zones = {z for z in grid_zones if not net.knows(z)}
    assert unknown_grid_zones == {"US-NY-NYIS"}
    for zone in ZONE_ALIASES:
        assert net.knows(zone), zone
    assert ZONE_ALIASES.keys().isdisjoint(net.zones)  # an alias never hides a measured zone
    for unknown in ("ZA", "NG", "MX-CE", None):
        assert not net.knows(unknown)
    ms, how = net.rtt_ms(-33.4, -70.6, "CL-SIC", -23.5, -46.6, "BR-SP")  # Santiago - Sao Paulo
    assert how == "measured"
    assert ms == net.matrix_ms.get(("CL-SEN", "BR-CS"), net.matrix_ms.get(("BR-CS", "CL-SEN")))
