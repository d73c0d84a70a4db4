"""Runs that live in W&B: read an offline W&B run, and turn a run-directory artifact back into a run
directory that the rest of :mod:`lightning_nas.analysis` reads.

An offline run (``<root>/wandb/offline-run-<time>-<id>/``) keeps everything it would upload in
``run-<id>.wandb``: a log of W&B's protobuf records in LevelDB's log format (a 7-byte file header,
then 32 KiB blocks of chunks, each with a 7-byte header: CRC-32, length, and whether it is a whole
record or its first, middle or last part). :func:`offline_records` reads it; :func:`offline_run`
gathers the run's name, group, job type, tags, config and artifacts from it. An artifact logged
offline lists its files with the local copies ``wandb sync`` will upload, so
:func:`run_artifact` copies them into a folder without the network.

Online, :func:`run_artifact` takes an ``entity/project/name:version`` reference and downloads it
with ``wandb.Api()`` (needs ``wandb login``)::

    from lightning_nas.analysis import load_run, run_artifact
    history, meta = load_run(run_artifact("me/lightning_nas/share_all-seed0-20260101-120000:latest"))

``wandb`` is imported only by these functions (it is not needed to import the analysis package).
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Iterator, Optional

from lightning_nas.wandb_run import ARTIFACT_TYPE

_MAGIC = b":W&B"
_FILE_HEADER = 7
_BLOCK = 32 * 1024
_CHUNK_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def offline_log(run: str | Path) -> Path:
    """The ``run-<id>.wandb`` file of an offline run directory (or the file itself)."""
    path = Path(run)
    if path.is_file():
        return path
    logs = sorted(path.glob("run-*.wandb"))
    if len(logs) != 1:
        raise FileNotFoundError(f"{path} holds {len(logs)} run-*.wandb files; expected an offline W&B run directory")
    return logs[0]


def _chunks(data: bytes) -> Iterator[bytes]:
    """Whole records of a LevelDB-format log whose first block starts with the file header."""
    if data[:4] != _MAGIC:
        raise ValueError("not a W&B run log (no ':W&B' header)")
    position, parts = _FILE_HEADER, []
    while position + _CHUNK_HEADER <= len(data):
        left = _BLOCK - position % _BLOCK
        if left < _CHUNK_HEADER:  # a block's tail too short for a header is padding
            position += left
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + _CHUNK_HEADER])
        position += _CHUNK_HEADER
        if kind == 0 and length == 0:  # zero padding to the end of the block
            position += left - _CHUNK_HEADER
            continue
        chunk = data[position : position + length]
        position += length
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) != checksum:
            break  # a log cut short by a crash: keep the records before it
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE:
            parts.append(chunk)
        elif kind == _LAST:
            yield b"".join(parts + [chunk])
            parts = []


def offline_records(run: str | Path, settle_s: float = 0.3, wait_s: float = 30.0) -> list[Any]:
    """Every record of an offline run (``wandb.proto.wandb_internal_pb2.Record``), in order.

    W&B's service writes the log behind the process that logs, and may still be writing it just
    after ``finish()`` has returned: the log is read once it has not grown for ``settle_s`` seconds
    (waiting at most ``wait_s``), then as far as it goes."""
    from wandb.proto import wandb_internal_pb2

    path, deadline = offline_log(run), time.monotonic() + wait_s
    data = path.read_bytes()
    while time.monotonic() < deadline:
        time.sleep(settle_s)
        again = path.read_bytes()
        if again == data:
            break
        data = again
    records = []
    for raw in _chunks(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        records.append(record)
    return records


def offline_run(run: str | Path) -> dict[str, Any]:
    """What an offline run holds: ``id``, ``name``, ``group``, ``job_type``, ``tags``, ``config``
    (key -> value, after every update), ``summary`` (top-level key -> last value) and ``artifacts``
    (name -> ``{"type", "files": {path in artifact: local copy}, "metadata"}``)."""
    out: dict[str, Any] = {"id": None, "name": None, "group": None, "job_type": None, "tags": [],
                           "config": {}, "summary": {}, "artifacts": {}}
    for record in offline_records(run):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out.update(id=r.run_id, name=r.display_name or out["name"], group=r.run_group or out["group"],
                       job_type=r.job_type or out["job_type"], tags=list(r.tags) or out["tags"])
            _update_config(out["config"], r.config)
        elif kind == "config":
            _update_config(out["config"], record.config)
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or (item.nested_key[0] if len(item.nested_key) == 1 else None)
                if key is not None:
                    out["summary"][key] = json.loads(item.value_json)
        elif kind == "artifact":
            a = record.artifact
            out["artifacts"][a.name] = {
                "type": a.type,
                "files": {entry.path: entry.local_path for entry in a.manifest.contents},
                "metadata": json.loads(a.metadata) if a.metadata else {},
            }
    out["config"].pop("_wandb", None)
    return out


def _update_config(config: dict, record: Any) -> None:
    for item in record.update:
        key = item.key or ".".join(item.nested_key)
        config[key] = json.loads(item.value_json)
    for item in record.remove:
        config.pop(item.key or ".".join(item.nested_key), None)


def run_artifact(reference: str | Path, name: Optional[str] = None, dest: Optional[str | Path] = None) -> Path:
    """A run directory from a run-directory artifact (:data:`ARTIFACT_TYPE`), as a local folder
    that :func:`lightning_nas.analysis.load_run` reads.

    ``reference`` is either an offline W&B run directory (``outputs/wandb/offline-run-...``), with
    ``name`` the artifact (default: its only run-directory artifact; the artifact is named like the
    run directory), or an ``entity/project/name:version`` reference, downloaded with
    ``wandb.Api()`` (needs the network). The files are copied to ``dest`` (default: a new
    temporary folder), which is returned."""
    path = Path(reference)
    if path.is_dir():
        artifacts = {k: v for k, v in offline_run(path)["artifacts"].items() if v["type"] == ARTIFACT_TYPE}
        if name is None:
            if len(artifacts) != 1:
                raise ValueError(f"{path} holds run-directory artifacts {sorted(artifacts)}: name one")
            name = next(iter(artifacts))
        if name not in artifacts:
            raise KeyError(f"{path} holds no run-directory artifact {name!r} (it holds {sorted(artifacts)})")
        target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix=f"{name}-"))
        target.mkdir(parents=True, exist_ok=True)
        for file, local in artifacts[name]["files"].items():
            shutil.copyfile(local, target / file)
        return target
    import wandb

    target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="run-artifact-"))
    return Path(wandb.Api().artifact(str(reference), type=ARTIFACT_TYPE).download(root=str(target)))
