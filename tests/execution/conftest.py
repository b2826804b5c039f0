"""One emulated three-site Ray cluster for the execution tests (started once, stopped at the
end: every process it started)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wattroute.execution.cluster import LocalSites

SITES = [("a", 4), ("b", 4), ("c", 4)]


@pytest.fixture(scope="session")
def ray_sites() -> Iterator[LocalSites]:
    sites = LocalSites(SITES, cpus_per_site=1, object_store_mb=80)
    sites.start()
    try:
        yield sites
    finally:
        sites.stop()
