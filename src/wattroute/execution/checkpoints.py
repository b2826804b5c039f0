"""Where batch jobs keep their checkpoints: a folder per job under a root, on any fsspec
filesystem (a local or shared directory by default; ``s3://...``, ``gs://...``, ... with the
matching fsspec package installed).

Per job: ``state.pkl`` (the last checkpointed state, pickled), ``meta.json`` (the progress it
stood for, when and by which attempt) and, once the job returns, ``result.pkl``. Every file
is written under a temporary name and then moved into place, so that a reader (or a job
resuming after its node died mid-write) sees the previous checkpoint or the new one, never
half of one.
"""

from __future__ import annotations

import json
import pickle
import time
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.core import url_to_fs


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint stands for: the share of the job's work done (0..1), the wall time
    it was written (s since the epoch) and the attempt that wrote it (1 for the first run)."""

    progress: float
    saved_at: float
    attempt: int
    checkpoints: int


class CheckpointStore:
    """Checkpoints of every job under ``root`` (a path or an fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        fs, path = url_to_fs(self.root)
        self.fs: fsspec.AbstractFileSystem = fs
        self.path: str = path
        self.fs.makedirs(self.path, exist_ok=True)

    def _file(self, job_id: str, name: str) -> str:
        return f"{self.path}/{job_id}/{name}"

    def _write(self, job_id: str, name: str, data: bytes) -> None:
        folder = f"{self.path}/{job_id}"
        self.fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(temporary, "wb") as f:
            f.write(data)
        self.fs.mv(temporary, self._file(job_id, name))

    def _read(self, job_id: str, name: str) -> bytes | None:
        try:
            with self.fs.open(self._file(job_id, name), "rb") as f:
                data: bytes = f.read()
                return data
        except FileNotFoundError:
            return None

    def save(self, job_id: str, state: Any, progress: float, attempt: int) -> CheckpointMeta:
        """Write a checkpoint: the state first, then the metadata that points at it."""
        previous = self.meta(job_id)
        self._write(job_id, "state.pkl", pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        meta = CheckpointMeta(
            progress=min(max(float(progress), 0.0), 1.0),
            saved_at=time.time(),
            attempt=attempt,
            checkpoints=(previous.checkpoints if previous else 0) + 1,
        )
        self._write(job_id, "meta.json", json.dumps(meta.__dict__).encode())
        return meta

    def load(self, job_id: str) -> Any | None:
        """The last checkpointed state, or ``None`` if the job has none yet."""
        data = self._read(job_id, "state.pkl")
        return None if data is None else pickle.loads(data)

    def meta(self, job_id: str) -> CheckpointMeta | None:
        data = self._read(job_id, "meta.json")
        return None if data is None else CheckpointMeta(**json.loads(data))

    def save_result(self, job_id: str, result: Any) -> None:
        self._write(job_id, "result.pkl", pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))

    def result(self, job_id: str) -> Any | None:
        data = self._read(job_id, "result.pkl")
        return None if data is None else pickle.loads(data)

    def has_result(self, job_id: str) -> bool:
        return bool(self.fs.exists(self._file(job_id, "result.pkl")))
