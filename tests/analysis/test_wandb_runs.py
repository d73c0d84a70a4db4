"""Reading offline W&B runs and run-directory artifacts, on W&B logs written record by record."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest
from wandb.proto import wandb_internal_pb2 as pb

from helpers.histories import history, write_run
from lightning_nas.analysis import load_run, offline_run, run_artifact
from lightning_nas.analysis.wandb_runs import offline_records

BLOCK = 32 * 1024


def _write_log(path: Path, records: list[pb.Record]) -> None:
    """LevelDB's log format as W&B writes it: a 7-byte file header, then chunks that never cross a
    32 KiB block (a record split into first, middle and last parts where it does)."""
    out = bytearray(b":W&B" + struct.pack("<H", 0xBEE1) + b"\x00")
    for record in records:
        data, first = record.SerializeToString(), True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += b"\x00" * left
                left = BLOCK
            size = min(len(data), left - 7)
            chunk, data = data[:size], data[size:]
            kind = (1 if not data else 2) if first else (4 if not data else 3)
            out += struct.pack("<IHB", zlib.crc32(bytes([kind]) + chunk), len(chunk), kind) + chunk
            first = False
            if not data:
                break
    path.write_bytes(bytes(out))


def _config(**items) -> pb.ConfigRecord:
    return pb.ConfigRecord(update=[pb.ConfigItem(key=k, value_json=json.dumps(v)) for k, v in items.items()])


def _artifact(name: str, kind: str, files: dict[str, Path]) -> pb.Record:
    entries = [pb.ArtifactManifestEntry(path=k, local_path=str(v), digest="x") for k, v in files.items()]
    return pb.Record(artifact=pb.ArtifactRecord(name=name, type=kind, manifest=pb.ArtifactManifest(contents=entries)))


@pytest.fixture
def offline(tmp_path):
    """An offline run named like a run directory, with a renamed display name, config updates (one
    larger than a block), a summary and the run directory as an artifact beside a table artifact."""
    run = write_run(tmp_path / "runs", "paper_a-seed3-20260101-000000", history([[0.5, 0.7, 0.6], [0.6, 0.8, 0.7]]),
                    config={"data": {"init_args": {"eval_split": "test"}}}, seed=3)
    folder = tmp_path / "wandb" / "offline-run-20260101_000000-abc"
    folder.mkdir(parents=True)
    big = "x" * (3 * BLOCK)
    records = [
        pb.Record(run=pb.RunRecord(run_id="abc", display_name="random-name", run_group="share_all+smoke",
                                   job_type="fit", tags=["space:paper_a"], config=_config(_wandb={}))),
        pb.Record(config=_config(seed=3, **{"data.init_args.eval_split": "test", "big": big})),
        pb.Record(run=pb.RunRecord(run_id="abc", display_name=run.name, run_group="share_all+smoke", job_type="fit",
                                   tags=["space:paper_a"])),
        pb.Record(summary=pb.SummaryRecord(update=[pb.SummaryItem(nested_key=["snapshot/gt/tau"], value_json='{"last": 0.5}')])),
        _artifact("run-abc-table", "run_table", {"t.json": run / "meta.json"}),
        _artifact(run.name, "run-directory", {"history.csv": run / "history.csv", "meta.json": run / "meta.json"}),
    ]
    _write_log(folder / "run-abc.wandb", records)
    return folder, run


def test_offline_run_gathers_identity_config_summary_and_artifacts(offline):
    folder, run = offline
    recorded = offline_run(folder)
    assert (recorded["id"], recorded["name"], recorded["group"], recorded["job_type"]) == ("abc", run.name, "share_all+smoke", "fit")
    assert recorded["tags"] == ["space:paper_a"]
    assert recorded["config"]["seed"] == 3 and recorded["config"]["data.init_args.eval_split"] == "test"
    assert len(recorded["config"]["big"]) == 3 * BLOCK and "_wandb" not in recorded["config"]
    assert recorded["summary"]["snapshot/gt/tau"] == {"last": 0.5}
    assert recorded["artifacts"][run.name] == {
        "type": "run-directory", "files": {"history.csv": str(run / "history.csv"), "meta.json": str(run / "meta.json")},
        "metadata": {},
    }


def test_run_artifact_of_an_offline_run_loads_as_the_run_directory(offline, tmp_path):
    folder, run = offline
    local = run_artifact(folder, dest=tmp_path / "copy")
    assert local == tmp_path / "copy"
    history_copy, meta_copy = load_run(local)
    history_run, meta_run = load_run(run)
    pd.testing.assert_frame_equal(history_copy, history_run)
    assert meta_copy == meta_run and meta_copy["seed"] == 3
    assert sorted(p.name for p in run_artifact(folder, name=run.name).iterdir()) == ["history.csv", "meta.json"]


def test_run_artifact_names_what_is_missing(offline):
    folder, _ = offline
    with pytest.raises(KeyError, match="no run-directory artifact 'other'"):
        run_artifact(folder, name="other")
    with pytest.raises(KeyError):
        run_artifact(folder, name="run-abc-table")  # a table, not a run directory


def test_a_log_cut_short_keeps_the_records_before_the_cut(offline):
    folder, _ = offline
    log = folder / "run-abc.wandb"
    whole = len(offline_records(folder))
    log.write_bytes(log.read_bytes()[:-10])
    assert len(offline_records(log)) == whole - 1


def test_a_folder_without_a_run_log_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="0 run-\\*.wandb"):
        offline_run(tmp_path)
