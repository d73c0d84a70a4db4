"""TFRecord framing and its CRC-32C checks, read without TensorFlow.

A TFRecord file is records laid end to end with no header. A record is

1. ``length``: uint64, little-endian;
2. the masked CRC-32C of those 8 length bytes (uint32, little-endian);
3. ``length`` data bytes;
4. the masked CRC-32C of the data (uint32, little-endian).

CRC-32C is the Castagnoli CRC (reflected polynomial ``0x82F63B78``, initial value and final XOR
``0xFFFFFFFF``); TFRecord stores it *masked*, ``((crc >> 15) | (crc << 17)) + 0xA282EAD8`` mod 2^32,
so that a CRC of data holding CRCs does not degenerate.

Both CRCs are checked: a benchmark file is half a gigabyte downloaded once, and a flipped or
missing byte must stop a run with the record it hit, not shift every accuracy after it. Python's
standard library has no CRC-32C, and a per-byte Python loop over 500 MB takes minutes, so
:func:`crc32c_many` runs the byte-wise table algorithm on all records at once, one numpy step per
byte position (see its docstring); :func:`crc32c` is the plain one-buffer version.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_nas.errors import ConfigError

#: Castagnoli polynomial, bit-reflected.
POLYNOMIAL = 0x82F63B78
#: Added to the rotated CRC by :func:`mask`.
MASK_DELTA = 0xA282EAD8
#: Bytes before a record's data (length, length CRC) and after it (data CRC).
HEADER, FOOTER = 12, 4


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(POLYNOMIAL), table >> 1).astype(np.uint32)
    return table


#: ``TABLE[b]``: the CRC register after shifting the byte ``b`` through it from zero.
TABLE = _table()
_TABLE_LIST = TABLE.tolist()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE_LIST[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc: int | np.ndarray) -> int | np.ndarray:
    """The masked form TFRecord stores (works on ints and on uint32 arrays alike)."""
    if isinstance(crc, np.ndarray):
        crc = crc.astype(np.uint32)
        return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(MASK_DELTA)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def crc32c_many(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC-32C of each slice ``buffer[starts[i] : starts[i] + lengths[i]]`` (uint32 array).

    The slices are processed as parallel lanes: step ``j`` feeds byte ``j`` of every slice longer
    than ``j`` through the table, so the Python loop runs once per byte position (a few hundred
    times for NAS-Bench-101) instead of once per byte. Lanes are taken :data:`LANES` at a time,
    so that the cache lines one step reads are still in the CPU cache at the next step (with all
    1.27 M records at once every byte read is a cache miss, three times slower).
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    crcs = np.empty(len(starts), dtype=np.uint32)
    for first in range(0, len(starts), LANES):
        crcs[first : first + LANES] = _lanes(buffer, starts[first : first + LANES], lengths[first : first + LANES])
    return crcs


#: Slices :func:`crc32c_many` runs in parallel.
LANES = 1 << 14


def _lanes(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """:func:`crc32c_many` of a few slices. They are sorted longest first, so that the lanes still
    running at step ``j`` are a prefix, updated in place without masks."""
    order = np.argsort(-lengths, kind="stable")
    offsets, remaining = starts[order], lengths[order]
    crc = np.full(len(order), 0xFFFFFFFF, dtype=np.uint32)
    longest = int(remaining[0]) if len(remaining) else 0
    running = np.searchsorted(-remaining, -np.arange(longest), side="left")  # lanes longer than j
    eight = np.uint32(8)
    for j in range(longest):
        lanes = int(running[j])
        register = crc[:lanes]
        index = register ^ buffer[offsets[:lanes] + j]
        index &= np.uint32(0xFF)
        register >>= eight
        register ^= TABLE[index]
    crcs = np.empty_like(crc)
    crcs[order] = crc ^ np.uint32(0xFFFFFFFF)
    return crcs


@dataclass(frozen=True)
class Records:
    """Where each record of a TFRecord file is.

    Attributes:
        offsets: Byte offset of each record's header (for error messages).
        starts: Byte offset of each record's data.
        lengths: Data length of each record.
    """

    offsets: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray


def frame(data: bytes, path: Path) -> Records:
    """The records of the TFRecord file ``path`` whose bytes are ``data``, after checking every
    length CRC and data CRC; :class:`ConfigError` naming the first damaged record otherwise.

    Records are numbered from 0 in messages; a record's byte offset is that of its length field.
    """
    size = len(data)
    length_at = struct.Struct("<Q").unpack_from
    offsets: list[int] = []
    lengths: list[int] = []
    truncated: tuple[int, int, int, str] | None = None  # record, offset, bytes left, bytes needed
    position = 0
    while position < size:
        left = size - position
        if left < HEADER:
            truncated = (len(offsets), position, left, f"at least {HEADER + FOOTER}")
            break
        (length,) = length_at(data, position)
        offsets.append(position)
        lengths.append(length)
        if HEADER + length + FOOTER > left:
            truncated = (len(offsets) - 1, position, left, str(HEADER + length + FOOTER))
            break
        position += HEADER + length + FOOTER
    buffer = np.frombuffer(data, dtype=np.uint8)
    record_offsets = np.array(offsets, dtype=np.int64)
    # lengths first: a damaged length also misplaces every later record, and may look like truncation
    stored = _uint32_at(buffer, record_offsets + 8)
    computed = mask(crc32c_many(buffer, record_offsets, np.full(len(offsets), 8)))
    _first_mismatch(path, record_offsets, stored, computed, "its length field fails its CRC")
    if truncated is not None:
        record, offset, left, needed = truncated
        raise ConfigError(
            f"{path}: {where(record, offset)} is truncated ({left} bytes left, {needed} needed): "
            "the file is incomplete; download it again"
        )
    starts = record_offsets + HEADER
    record_lengths = np.array(lengths, dtype=np.int64)
    stored = _uint32_at(buffer, starts + record_lengths)
    computed = mask(crc32c_many(buffer, starts, record_lengths))
    _first_mismatch(path, record_offsets, stored, computed, "its data fail their CRC")
    return Records(record_offsets, starts, record_lengths)


def _uint32_at(buffer: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The little-endian uint32 at each of ``positions`` (unaligned reads)."""
    value = np.zeros(len(positions), dtype=np.uint32)
    for byte in range(4):
        value |= buffer[positions + byte].astype(np.uint32) << np.uint32(8 * byte)
    return value


def _first_mismatch(path: Path, offsets: np.ndarray, stored: np.ndarray, computed: np.ndarray, problem: str) -> None:
    bad = np.flatnonzero(stored != computed)
    if len(bad):
        record = int(bad[0])
        raise ConfigError(f"{path}: {where(record, int(offsets[record]))}: {problem}: the file is damaged; download it again")


def where(record: int, offset: int) -> str:
    """A record's position in messages: its number (from 0) and the byte offset of its header."""
    return f"record {record} (from 0) at byte offset {offset}"
