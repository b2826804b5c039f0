"""Job records copied by the memory store: a deep copy equals the original and shares
nothing that can change."""

from __future__ import annotations

import copy

import pandas as pd

from wattroute.runtime.records import JobRecord, MemoryStore

T0 = pd.Timestamp("2023-06-01T00:00Z")


def test_a_deep_copy_of_a_job_equals_it_and_shares_nothing_mutable():
    job = JobRecord(
        "j1",
        "acme",
        "train",
        T0,
        T0 + pd.Timedelta(hours=8),
        4.0,
        1,
        2,
        allowed_sites=("a", "b"),
        args={"steps": [1, 2], "opts": {"lr": 0.1}},
    )
    twin = copy.deepcopy(job)
    assert twin == job
    assert twin is not job
    twin.args["steps"].append(3)
    twin.args["opts"]["lr"] = 0.2
    twin.state, twin.done_accelerator_hours = "running", 1.0
    assert job.args == {"steps": [1, 2], "opts": {"lr": 0.1}}
    assert (job.state, job.done_accelerator_hours) == ("queued", 0.0)
    # one object met twice in a copy is copied once (the memo is passed on)
    shared = {"x": [1]}
    other = JobRecord("j2", "a", "n", T0, T0, 1.0, 1, 1, args=shared)
    copied, copied_job = copy.deepcopy((shared, other))
    assert copied_job.args is copied


def test_the_memory_store_hands_out_copies():
    store = MemoryStore()
    store.add_job(JobRecord("j1", "acme", "n", T0, T0 + pd.Timedelta(hours=8), 4.0, 1, 2))
    (mine,) = store.active_jobs()
    mine.args["x"] = 1
    mine.state = "cancelled"
    (again,) = store.active_jobs()
    assert again.args == {}
    assert again.state == "queued"
