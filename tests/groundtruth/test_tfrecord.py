"""CRC-32C against published values and a bit-by-bit reference; framing and the one-line error for
each kind of damage, at the damaged record."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.fake_nb101 import frame as frame_record
from helpers.fake_nb101 import write_nb101
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import tfrecord

LABELS = [f"{i:032x}" for i in range(4)]


def slow_crc32c(data: bytes) -> int:
    """The definition: shift each bit through the reflected Castagnoli polynomial."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    "data,crc",
    [
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value
        (b"", 0),
        (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4 examples
        (bytes([0xFF] * 32), 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_published_values(data, crc):
    assert tfrecord.crc32c(data) == crc
    assert slow_crc32c(data) == crc
    buffer = np.frombuffer(b"xy" + data, dtype=np.uint8)
    assert tfrecord.crc32c_many(buffer, np.array([2]), np.array([len(data)])).tolist() == [crc]


def test_crc32c_many_matches_the_bitwise_definition():
    generator = np.random.default_rng(0)
    data = generator.integers(0, 256, size=3000, dtype=np.uint8).tobytes()
    starts = generator.integers(0, 2000, size=200)
    lengths = generator.integers(0, 1000, size=200)
    lengths[:3] = [0, 1, 999]
    crcs = tfrecord.crc32c_many(np.frombuffer(data, dtype=np.uint8), starts, lengths)
    assert crcs.dtype == np.uint32
    expected = [slow_crc32c(data[start : start + length]) for start, length in zip(starts.tolist(), lengths.tolist())]
    assert crcs.tolist() == expected
    assert [tfrecord.crc32c(data[s : s + n]) for s, n in zip(starts.tolist()[:20], lengths.tolist()[:20])] == expected[:20]


def test_mask_rotates_and_adds_the_delta():
    assert tfrecord.mask(0) == 0xA282EAD8
    assert tfrecord.mask(1) == (1 << 17) + 0xA282EAD8
    assert tfrecord.mask(0xFFFFFFFF) == (0xFFFFFFFF + 0xA282EAD8) % 2**32
    assert tfrecord.mask(0xE3069283) == (((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xA282EAD8) % 2**32
    values = np.array([0, 1, 0xFFFFFFFF, 0xE3069283], dtype=np.uint32)
    assert tfrecord.mask(values).tolist() == [tfrecord.mask(int(v)) for v in values]


def test_frame_finds_every_record(tmp_path):
    fake = write_nb101(tmp_path / "nb.tfrecord", LABELS, repeats=2)
    data = fake.path.read_bytes()
    records = tfrecord.frame(data, fake.path)
    assert records.offsets.tolist() == fake.offsets
    assert (records.starts == records.offsets + 12).all()
    ends = records.starts + records.lengths + 4
    assert ends[:-1].tolist() == fake.offsets[1:] and ends[-1] == len(data)
    assert data[records.starts[3] : records.starts[3] + records.lengths[3]].startswith(f'["{LABELS[1]}", 108, '.encode())


def test_empty_file_has_no_records(tmp_path):
    assert len(tfrecord.frame(b"", tmp_path / "empty.tfrecord").starts) == 0


def damaged(tmp_path, change) -> tuple[str, list[int]]:
    """The message of framing the fake file after ``change(bytearray, offsets)``."""
    fake = write_nb101(tmp_path / "nb.tfrecord", LABELS)
    data = bytearray(fake.path.read_bytes())
    data = change(data, fake.offsets) or data
    with pytest.raises(ConfigError) as info:
        tfrecord.frame(bytes(data), fake.path)
    message = str(info.value)
    assert "\n" not in message and str(fake.path) in message
    return message, fake.offsets


def test_flipped_data_byte(tmp_path):
    def flip(data, offsets):
        data[offsets[5] + 12 + 40] ^= 0x10

    message, offsets = damaged(tmp_path, flip)
    assert f"record 5 (from 0) at byte offset {offsets[5]}: its data fail their CRC" in message and "download it again" in message


def test_flipped_data_crc(tmp_path):
    def flip(data, offsets):
        data[offsets[8] - 1] ^= 0x01  # last byte of record 7

    message, offsets = damaged(tmp_path, flip)
    assert f"record 7 (from 0) at byte offset {offsets[7]}: its data fail their CRC" in message


@pytest.mark.parametrize("byte", [0, 5, 7, 9])  # low and high bytes of the length, a byte of its CRC
def test_flipped_length_byte(tmp_path, byte):
    def flip(data, offsets):
        data[offsets[2] + byte] ^= 0x04

    message, offsets = damaged(tmp_path, flip)
    assert f"record 2 (from 0) at byte offset {offsets[2]}: its length field fails its CRC" in message


@pytest.mark.parametrize("cut", [1, 4, 100])
def test_truncated_data(tmp_path, cut):
    message, offsets = damaged(tmp_path, lambda data, offsets: data[:-cut])
    last = len(offsets) - 1
    assert f"record {last} (from 0) at byte offset {offsets[last]} is truncated" in message and "incomplete" in message


def test_truncated_header(tmp_path):
    message, offsets = damaged(tmp_path, lambda data, offsets: data[: offsets[6] + 5])
    assert f"record 6 (from 0) at byte offset {offsets[6]} is truncated (5 bytes left, at least 16 needed)" in message


def test_records_of_any_content(tmp_path):
    data = b"".join(frame_record(payload) for payload in (b"", b"a", bytes(range(256)) * 3))
    records = tfrecord.frame(data, tmp_path / "x.tfrecord")
    assert records.lengths.tolist() == [0, 1, 768] and records.offsets.tolist() == [0, 16, 33]
