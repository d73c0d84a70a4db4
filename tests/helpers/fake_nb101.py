"""A small ``nasbench_only108.tfrecord`` written in the real on-disk format, for tests that must
never download the 499 MB file.

Each record is framed as TFRecord does (uint64 length, masked CRC-32C of the length bytes, data,
masked CRC-32C of the data) and its data are the JSON array the benchmark writes, ``[hash, 108,
adjacency, ops, base64 metrics]``, with ``ModelMetrics`` serialized by the protobuf encoder below:
fields in number order, doubles as fixed64, ``trainable_parameters`` as a varint, a
``checkpoint_path`` string on some evaluations, and fields the schema lacks (as a newer writer
would add) so that a reader must skip them by wire type. Accuracies are multiples of 1/9984, as
in the benchmark (9,984 images per evaluated split).

Example::

    fake = write_nb101(tmp_path / "nb101.tfrecord", NB101Space().labels([0, 1, 2]))
    fake.runs            # one row per record: label and the reader's columns (accuracies in %)
    fake.offsets[4]      # byte offset of record 4
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lightning_nas.groundtruth.tfrecord import crc32c, mask

#: Images per evaluated split that the benchmark's accuracies are fractions of.
IMAGES = 9984
#: The NAS-Bench-101 README's Inception-like cell as ``(adjacency, ops)`` strings, written into every
#: record (the reader ignores them).
ADJACENCY = "0111010" "0000001" "0000001" "0000100" "0000001" "0000001" "0000000"
OPS = "input,conv1x1-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,maxpool3x3,output"


@dataclass(frozen=True)
class FakeNB101:
    """What :func:`write_nb101` wrote.

    Attributes:
        path: The file.
        runs: One row per record, in file order: ``label`` and the columns
            :mod:`lightning_nas.groundtruth.nb101` reads (accuracies in percent).
        offsets: Byte offset of each record.
    """

    path: Path
    runs: pd.DataFrame
    offsets: list[int]


def write_nb101(path: Path, labels: Sequence[str], repeats: int = 3, seed: int = 0, epochs: int | Sequence[int] = 108) -> FakeNB101:
    """Write ``repeats`` training runs of each of ``labels`` (runs of one label in a row, as in the
    benchmark) with random metrics; ``epochs`` may give each record its own budget."""
    generator = np.random.default_rng(seed)
    count = len(labels) * repeats
    budgets = [epochs] * count if isinstance(epochs, int) else list(epochs)
    rows, offsets, records = [], [], []
    position = 0
    for record, label in enumerate(label for label in labels for _ in range(repeats)):
        correct = generator.integers(IMAGES // 10, IMAGES, size=(3, 3))  # evaluation x (train, valid, test)
        times = np.sort(generator.uniform(100, 5000, size=3))
        parameters = int(generator.integers(200_000, 40_000_000))
        evaluations = [
            evaluation(epoch, time, *(correct[k] / IMAGES), checkpoint=f"gs://fake/{label}/{k}" if record % 2 else None)
            for k, (epoch, time) in enumerate(zip((0.0, budgets[record] / 2, float(budgets[record])), times))
        ]
        metrics = model_metrics(evaluations, parameters, total_time=float(times[-1] + 60))
        data = json.dumps([label, budgets[record], ADJACENCY, OPS, base64.b64encode(metrics).decode()]).encode()
        records.append(frame(data))
        offsets.append(position)
        position += len(records[-1])
        final, halfway = correct[2] / IMAGES * 100, correct[1] / IMAGES * 100
        rows.append(
            {
                "label": label,
                "final_test_accuracy": final[2],
                "final_validation_accuracy": final[1],
                "final_train_accuracy": final[0],
                "final_training_time": times[2],
                "halfway_test_accuracy": halfway[2],
                "halfway_validation_accuracy": halfway[1],
                "halfway_train_accuracy": halfway[0],
                "halfway_training_time": times[1],
                "trainable_parameters": float(parameters),
            }
        )
    path.write_bytes(b"".join(records))
    return FakeNB101(path, pd.DataFrame(rows), offsets)


def frame(data: bytes) -> bytes:
    """One TFRecord record holding ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", mask(crc32c(length))) + data + struct.pack("<I", mask(crc32c(data)))


def evaluation(epoch: float, time: float, train: float, valid: float, test: float, checkpoint: str | None = None) -> bytes:
    """A serialized ``EvaluationData``, with an unknown fixed32 field 9 after the known ones."""
    fields = [_double(1, epoch), _double(2, time), _double(3, train), _double(4, valid), _double(5, test)]
    if checkpoint is not None:
        fields.append(_delimited(6, checkpoint.encode()))
    fields.append(_key(9, 5) + struct.pack("<I", 7))
    return b"".join(fields)


def model_metrics(evaluations: Sequence[bytes], parameters: int, total_time: float) -> bytes:
    """A serialized ``ModelMetrics``, with an unknown varint field 15 and string field 16 at its end."""
    return b"".join(
        [*(_delimited(1, message) for message in evaluations), _key(2, 0) + varint(parameters), _double(3, total_time),
         _key(15, 0) + varint(300), _delimited(16, b"future")]
    )


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative ``value``, low 7-bit group first."""
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def _double(number: int, value: float) -> bytes:
    return _key(number, 1) + struct.pack("<d", value)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + varint(len(payload)) + payload
