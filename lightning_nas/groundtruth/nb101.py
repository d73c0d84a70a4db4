"""NAS-Bench-101's ``nasbench_only108.tfrecord`` as a table: one row per training run.

The file (Ying et al., 2019; google-research/nasbench) holds 3 training runs of 108 epochs for
each of the 423,624 cells, one TFRecord record per run (framing and CRCs: :mod:`.tfrecord`). A
record's data are the UTF-8 JSON array ``[hash, epochs, adjacency, ops, metrics]``: the cell's
32-character hash (the label :class:`lightning_nas.spaces.nb101.NB101Space` uses), the epoch budget,
the adjacency matrix as a row-major ``"0101…"`` string, the ops joined by commas, and the base64 of
a serialized ``ModelMetrics`` protobuf (proto2), decoded here by hand so that no TensorFlow or
protobuf package is needed:

- ``ModelMetrics``: 1 ``evaluation_data`` (repeated ``EvaluationData``), 2 ``trainable_parameters``
  (int32), 3 ``total_time`` (double);
- ``EvaluationData``: 1 ``current_epoch``, 2 ``training_time`` (seconds), 3 ``train_accuracy``,
  4 ``validation_accuracy``, 5 ``test_accuracy`` (doubles), 6 ``checkpoint_path`` (string).

``evaluation_data`` holds the evaluations at epoch 0, at half the budget and at the end; the
columns are ``final_*`` (the last) and ``halfway_*`` (the middle) of ``test_accuracy``,
``validation_accuracy``, ``train_accuracy``, ``training_time``, and ``trainable_parameters``.
The file stores accuracies as fractions; this reader gives **percent** (the fraction × 100), like
the NAS-Bench-201 tables and NASLib's NAS-Bench-101 data, so tables of every benchmark read alike.
Paper B's yardstick is ``final_test_accuracy`` averaged over the 3 runs, which
:class:`~lightning_nas.groundtruth.GroundTruth` does for repeated labels.

Decoding takes tens of seconds, so the table is cached on disk (:mod:`.cache`).
"""

from __future__ import annotations

import binascii
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import cache, tfrecord
from lightning_nas.spaces.base import SearchSpace

#: Where to get the file, for the message about a missing one.
SOURCE = "nasbench_only108.tfrecord from the google-research/nasbench README (https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord)"
#: Metric columns, in order; accuracies in percent.
COLUMNS: tuple[str, ...] = (
    "final_test_accuracy",
    "final_validation_accuracy",
    "final_train_accuracy",
    "final_training_time",
    "halfway_test_accuracy",
    "halfway_validation_accuracy",
    "halfway_train_accuracy",
    "halfway_training_time",
    "trainable_parameters",
)
#: Names the cache entry; bump it when the table this module makes changes.
KIND = "nb101_tfrecord-v1"

_double = struct.Struct("<d").unpack


def read(path: Path, space: SearchSpace | None = None) -> pd.DataFrame:
    """One row per record of the tfrecord at ``path``: ``label`` (the cell's hash) and
    :data:`COLUMNS`. ``space`` is unused: the hashes are the NB101 space's labels as they stand."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"NAS-Bench-101 file {path} does not exist: download {SOURCE}")
    return cache.cached_table(path, KIND, lambda: decode(path.read_bytes(), path))


def decode(data: bytes, path: Path) -> pd.DataFrame:
    """The table of the tfrecord bytes ``data`` (``path`` names the file in error messages)."""
    records = tfrecord.frame(data, path)
    if len(records.starts) == 0:
        raise ConfigError(f"{path} holds no records: it is not {SOURCE}")
    labels: list[str] = []
    values = np.empty((len(records.starts), len(COLUMNS)))
    epochs: set[int] = set()
    for record, (offset, start, length) in enumerate(zip(records.offsets.tolist(), records.starts.tolist(), records.lengths.tolist())):
        try:
            label, budget, values[record] = _row(data[start : start + length])
        except (ValueError, TypeError, IndexError, struct.error) as error:
            raise ConfigError(f"{path}: {tfrecord.where(record, offset)}: unreadable payload ({error}): the file is not {SOURCE}") from None
        labels.append(label)
        epochs.add(budget)
    if len(epochs) > 1:
        raise ConfigError(
            f"{path} mixes epoch budgets {sorted(epochs)} (nasbench_full.tfrecord?); averaging runs needs one budget: use {SOURCE}"
        )
    table = pd.DataFrame(values, columns=list(COLUMNS))
    table.insert(0, "label", labels)
    return table


def _row(payload: bytes) -> tuple[str, int, list[float]]:
    """``(hash, epochs, COLUMNS values)`` of one record's data."""
    fields = json.loads(payload)
    if not isinstance(fields, list) or len(fields) != 5:
        raise ValueError("expected a JSON array [hash, epochs, adjacency, ops, metrics]")
    label, budget, _, _, metrics = fields
    if not isinstance(label, str) or not isinstance(budget, int) or not isinstance(metrics, str):
        raise ValueError("expected a string hash, an integer epoch count and base64 metrics")
    model = _fields(binascii.a2b_base64(metrics))
    evaluations = model.get(1, [])
    if len(evaluations) != 3:
        raise ValueError(f"{len(evaluations)} evaluations where 3 (start, halfway, end) are expected")
    parameters = model.get(2, [None])[-1]
    if not isinstance(parameters, int):
        raise ValueError("trainable_parameters is missing or not a varint")
    time, train, valid, test = _evaluation(evaluations[2])
    halfway_time, halfway_train, halfway_valid, halfway_test = _evaluation(evaluations[1])
    row = [100 * test, 100 * valid, 100 * train, time, 100 * halfway_test, 100 * halfway_valid, 100 * halfway_train, halfway_time, float(parameters)]
    return label, budget, row


def _evaluation(message: int | bytes) -> tuple[float, float, float, float]:
    """``(training_time, train, validation, test accuracy)`` of an ``EvaluationData`` (proto2: the
    last occurrence of a field wins)."""
    if not isinstance(message, bytes):
        raise ValueError("evaluation_data is not a submessage")
    fields = _fields(message)
    try:
        return (_double(fields[2][-1])[0], _double(fields[3][-1])[0], _double(fields[4][-1])[0], _double(fields[5][-1])[0])
    except (KeyError, TypeError, struct.error):
        raise ValueError("EvaluationData lacks a double training_time or accuracy") from None


def _fields(message: bytes) -> dict[int, list[int | bytes]]:
    """Field number -> values of a protobuf message, in order: ints for varints, the raw bytes for
    fixed-size and length-delimited fields. Group wire types (3, 4; unused since proto2's early
    days) are an error."""
    fields: dict[int, list[int | bytes]] = {}
    position, end = 0, len(message)
    while position < end:
        # keys and lengths below 128 are one byte: the common case, read without a call
        key = message[position]
        position += 1
        if key > 0x7F:
            key, position = _varint(message, position - 1)
        wire = key & 7
        if wire == 1:
            value = message[position : position + 8]
            position += 8
        elif wire == 2:
            size = message[position]
            position += 1
            if size > 0x7F:
                size, position = _varint(message, position - 1)
            value = message[position : position + size]
            position += size
        elif wire == 0:
            value, position = _varint(message, position)
        elif wire == 5:
            value = message[position : position + 4]
            position += 4
        else:
            raise ValueError(f"protobuf wire type {wire} is not supported")
        if position > end:
            raise ValueError("protobuf message is truncated")
        number = key >> 3
        if number in fields:
            fields[number].append(value)
        else:
            fields[number] = [value]
    return fields


def _varint(message: bytes, position: int) -> tuple[int, int]:
    """The base-128 varint at ``position`` and the position after it."""
    value = shift = 0
    while True:
        byte = message[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("protobuf varint longer than 10 bytes")
