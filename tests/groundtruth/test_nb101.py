"""The NAS-Bench-101 tfrecord reader: one row per record with the benchmark's numbers in percent,
a clear error per unreadable record, and the table cached once per file."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pandas as pd
import pytest

from helpers.fake_nb101 import IMAGES, evaluation, frame, model_metrics, write_nb101
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import cache, nb101

LABELS = ["28cfc7874f6d200472e1a9dcd8650aa0", "043721b9c7fe8c5fad811d47d83132ec", "00005c142e6f48ac74fdcf73e3439874"]


def test_round_trip(tmp_path):
    fake = write_nb101(tmp_path / "nasbench_only108.tfrecord", LABELS)
    table = nb101.read(fake.path)
    assert list(table.columns) == ["label", *nb101.COLUMNS]
    assert table["label"].tolist() == [label for label in LABELS for _ in range(3)]
    pd.testing.assert_frame_equal(table, fake.runs, check_dtype=False)
    accuracies = table.filter(like="accuracy").to_numpy()
    assert ((accuracies >= 10) & (accuracies < 100)).all()  # percent
    np.testing.assert_allclose(accuracies * IMAGES / 100, np.round(accuracies * IMAGES / 100), atol=1e-6)
    assert (table["final_training_time"] > table["halfway_training_time"]).all()
    assert table["trainable_parameters"].between(200_000, 40_000_000).all()


def test_one_record_decoded_by_hand(tmp_path):
    evaluations = [evaluation(0, 0, 0.1, 0.1, 0.1), evaluation(54, 600.5, 0.75, 0.7, 0.69), evaluation(108, 1200.25, 1.0, 0.9375, 0.93, checkpoint="x" * 200)]
    metrics = model_metrics(evaluations, parameters=2_694_282, total_time=1300.0)
    payload = json.dumps([LABELS[0], 108, "0110", "input,output", base64.b64encode(metrics).decode()]).encode()
    (tmp_path / "one.tfrecord").write_bytes(frame(payload))
    row = nb101.read(tmp_path / "one.tfrecord").iloc[0]
    assert row["label"] == LABELS[0]
    assert row[list(nb101.COLUMNS)].tolist() == [93.0, 93.75, 100.0, 1200.25, 69.0, 70.0, 75.0, 600.5, 2_694_282.0]


def test_cached_once_per_file(tmp_path, own_cache, monkeypatch):
    fake = write_nb101(tmp_path / "nb.tfrecord", LABELS)
    first = nb101.read(fake.path)
    entries = list((own_cache / "groundtruth").glob("nb101_tfrecord-v1-*.npz"))
    assert len(entries) == 1 and entries[0] == cache.cache_file(fake.path, nb101.KIND)
    assert not list((own_cache / "groundtruth").glob("*.tmp"))

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(nb101, "decode", no_decoding)
    pd.testing.assert_frame_equal(nb101.read(fake.path), first)
    pd.testing.assert_frame_equal(nb101.read(tmp_path / "." / "nb.tfrecord"), first)
    stat = fake.path.stat()
    os.utime(fake.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a replaced file
    with pytest.raises(AssertionError, match="decoded again"):
        nb101.read(fake.path)


def test_damaged_cache_entry_is_rebuilt(tmp_path):
    fake = write_nb101(tmp_path / "nb.tfrecord", LABELS)
    first = nb101.read(fake.path)
    cache.cache_file(fake.path, nb101.KIND).write_bytes(b"not a zip")
    pd.testing.assert_frame_equal(nb101.read(fake.path), first)
    assert cache.cache_file(fake.path, nb101.KIND).stat().st_size > 100


def test_unwritable_cache_still_reads(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LIGHTNING_NAS_CACHE", str(tmp_path / "file"))  # a file where the folder should be
    fake = write_nb101(tmp_path / "nb.tfrecord", LABELS)
    pd.testing.assert_frame_equal(nb101.read(fake.path), fake.runs, check_dtype=False)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        nb101.read(tmp_path / "nasbench_only108.tfrecord")
    message = str(info.value)
    assert str(tmp_path / "nasbench_only108.tfrecord") in message and "does not exist" in message
    assert "https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord" in message and "\n" not in message


def test_empty_file(tmp_path):
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(ConfigError, match="empty.tfrecord holds no records"):
        nb101.read(tmp_path / "empty.tfrecord")


def test_damaged_record_is_reported_by_the_reader(tmp_path):
    fake = write_nb101(tmp_path / "nb.tfrecord", LABELS)
    data = bytearray(fake.path.read_bytes())
    data[fake.offsets[4] + 30] ^= 1
    fake.path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=rf"record 4 \(from 0\) at byte offset {fake.offsets[4]}: its data fail their CRC"):
        nb101.read(fake.path)


def metrics_of(evaluations=3, parameters=b"\x10\x05") -> str:
    body = b"".join(b"\x0a" + bytes([len(e)]) + e for e in [evaluation(i, i, 0.5, 0.5, 0.5) for i in range(evaluations)])
    return base64.b64encode(body + parameters).decode()


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"not json", "Expecting value"),
        (b'{"hash": 1}', "expected a JSON array"),
        (json.dumps([LABELS[0], 108, "01", "input,output"]).encode(), "expected a JSON array"),
        (json.dumps([7, 108, "01", "input,output", metrics_of()]).encode(), "string hash"),
        (json.dumps([LABELS[0], 108, "01", "input,output", "@@@"]).encode(), "0 evaluations where 3"),
        (json.dumps([LABELS[0], 108, "01", "input,output", metrics_of(2)]).encode(), "2 evaluations where 3"),
        (json.dumps([LABELS[0], 108, "01", "input,output", metrics_of(parameters=b"")]).encode(), "trainable_parameters"),
        (json.dumps([LABELS[0], 108, "01", "input,output", metrics_of(parameters=b"\x10\x85")]).encode(), "index out of range"),
        (json.dumps([LABELS[0], 108, "01", "input,output", metrics_of(parameters=b"\x13")]).encode(), "wire type 3"),
        (json.dumps([LABELS[0], 108, "01", "input,output", metrics_of(parameters=b"\x12\x09abc")]).encode(), "truncated"),
        (json.dumps([LABELS[0], 108, "01", "input,output", base64.b64encode(b"\x0a\x02\x10\x01" * 3 + b"\x10\x05").decode()]).encode(), "lacks a double"),
    ],
)
def test_unreadable_payload(tmp_path, payload, reason):
    good = write_nb101(tmp_path / "good.tfrecord", LABELS[:1], repeats=2).path.read_bytes()
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(good + frame(payload))
    with pytest.raises(ConfigError) as info:
        nb101.read(path)
    message = str(info.value)
    assert f"{path}: record 2 (from 0) at byte offset {len(good)}: unreadable payload (" in message and reason in message
    assert "\n" not in message


def test_mixed_epoch_budgets(tmp_path):
    fake = write_nb101(tmp_path / "nasbench_full.tfrecord", LABELS, repeats=2, epochs=[4, 108] * 3)
    with pytest.raises(ConfigError, match=r"mixes epoch budgets \[4, 108\].*nasbench_only108.tfrecord"):
        nb101.read(fake.path)
