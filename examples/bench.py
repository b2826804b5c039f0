"""Compare policies against the perfect-foresight oracle on the fleet of build_fleet.py.

The oracle sees the whole period in advance and solves it as one linear program: its objective
bounds what any policy can reach. A policy's capture ratio is the share of the oracle's saving
over the ``agnostic`` baseline that the policy achieves.

    .venv/bin/python examples/bench.py
"""

from __future__ import annotations

from build_fleet import fleet

import wattroute


def main() -> None:
    summaries = wattroute.compare(fleet(), ("agnostic", "greedy", "mpc"))
    print(f"{'policy':<10} {'objective USD':>14} {'capture':>8}")
    for name, s in summaries.items():
        print(f"{name:<10} {s['objective_usd']:>14.6f} {s['capture_ratio']:>8.1%}")


if __name__ == "__main__":
    main()
