"""GroundTruth over a benchmark's records: repeats averaged per child and counted in describe(), the
format told from the file, the checks of a table, and each file decoded once."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from helpers.fake_nb101 import write_nb101
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth, nb101, table
from lightning_nas.spaces.base import Arch, SearchSpace

HASHES = [hashlib.md5(f"cell {i}".encode()).hexdigest() for i in range(6)]


class HashSpace(SearchSpace):
    """Six children labelled by 32-character hashes, like NAS-Bench-101's."""

    name = "hashes"

    def __len__(self) -> int:
        return len(HASHES)

    def arch(self, index: int) -> Arch:
        return (self._check_index(index),)

    def index(self, arch: Arch) -> int:
        return self._check_index(arch[0])

    def label(self, arch: Arch) -> str:
        return HASHES[self.index(arch)]

    def parse(self, label: str) -> Arch:
        if label not in HASHES:
            raise ConfigError(f"{label!r} is no child of hashes")
        return (HASHES.index(label),)


SPACE = HashSpace()


def test_repeats_are_averaged(tmp_path):
    order = [HASHES[i] for i in (3, 0, 5, 1, 4, 2)]
    fake = write_nb101(tmp_path / "nb.tfrecord", order)
    truth = GroundTruth(str(fake.path), column="final_test_accuracy")
    values = truth.load_space(SPACE)
    runs = fake.runs["final_test_accuracy"].to_numpy().reshape(6, 3)  # 3 runs of each label in a row
    np.testing.assert_allclose(values[[3, 0, 5, 1, 4, 2]], runs.mean(axis=1), rtol=1e-15)
    assert values[0] == pytest.approx(sum(fake.runs["final_test_accuracy"][3:6]) / 3)
    np.testing.assert_allclose(truth.load(SPACE, [HASHES[2], HASHES[3]]), [runs[5].mean(), runs[0].mean()], rtol=1e-15)
    halfway = GroundTruth(str(fake.path), column="halfway_validation_accuracy").load(SPACE, [HASHES[1]])
    assert halfway[0] == pytest.approx(fake.runs["halfway_validation_accuracy"][9:12].mean())


def test_describe_counts_records(tmp_path):
    # two files laid end to end are one file of records: 3 runs of three children, 1 run of a fourth
    three = write_nb101(tmp_path / "a.tfrecord", HASHES[:3]).path.read_bytes()
    one = write_nb101(tmp_path / "b.tfrecord", HASHES[3:4], repeats=1, seed=1).path.read_bytes()
    (tmp_path / "both.tfrecord").write_bytes(three + one)
    truth = GroundTruth(str(tmp_path / "both.tfrecord"), column="final_test_accuracy", partial=True)
    meta = truth.describe(SPACE)
    assert meta == {
        "path": str(tmp_path / "both.tfrecord"),
        "column": "final_test_accuracy",
        "arch_column": "arch",
        "partial": True,
        "format": "nb101_tfrecord",
        "resolved_path": str((tmp_path / "both.tfrecord").resolve()),
        "records": 10,
        "children": 4,
        "averaged_children": 3,
        "max_records": 3,
    }
    json.dumps(meta)
    values = truth.load_space(SPACE)
    assert np.isnan(values[4:]).all() and not np.isnan(values[:4]).any()
    with pytest.raises(ConfigError, match=f"lacks 1 of the evaluated children, e.g. '{HASHES[5]}'"):
        truth.load(SPACE, [HASHES[0], HASHES[5]])


def test_describe_a_table(tmp_path):
    path = tmp_path / "gt.csv"
    path.write_text("arch,accuracy\n" + "".join(f"{label},{i}\n" for i, label in enumerate(HASHES)))
    meta = GroundTruth(str(path)).describe(SPACE)
    assert meta["format"] == "table" and (meta["records"], meta["children"], meta["averaged_children"], meta["max_records"]) == (6, 6, 0, 1)


def test_whole_space_needs_every_child(tmp_path):
    fake = write_nb101(tmp_path / "nb.tfrecord", HASHES[:4])
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(fake.path), column="final_test_accuracy").load_space(SPACE)
    message = str(info.value)
    assert "measures 4 children but hashes has 6" in message and "ground_truth.partial" in message and "\n" not in message


def test_unknown_hash(tmp_path):
    fake = write_nb101(tmp_path / "nb.tfrecord", [*HASHES, "f" * 32])
    with pytest.raises(ConfigError, match=r"1 labels are not children of hashes, e.g. 'f{32}' \(is nb.tfrecord a nb101_tfrecord file of hashes\?\)"):
        GroundTruth(str(fake.path), column="final_test_accuracy", partial=True).load(SPACE, HASHES[:1])


def test_unknown_column_lists_the_metrics(tmp_path):
    fake = write_nb101(tmp_path / "nb.tfrecord", HASHES)
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(fake.path)).load_space(SPACE)  # the default column "accuracy"
    message = str(info.value)
    assert "no metric 'accuracy' (set ground_truth.column)" in message and "final_test_accuracy, final_validation_accuracy" in message


def test_missing_tfrecord_says_where_to_get_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(tmp_path / "nasbench_only108.tfrecord")).check_file()
    message = str(info.value)
    assert "does not exist: fix ground_truth.path" in message and "storage.googleapis.com/nasbench/nasbench_only108.tfrecord" in message


def test_each_file_is_decoded_once(tmp_path, monkeypatch):
    fake = write_nb101(tmp_path / "nb.tfrecord", HASHES)
    calls = []
    read = nb101.read
    monkeypatch.setattr(nb101, "read", lambda path, space: calls.append(path) or read(path, space))
    truth = GroundTruth(str(fake.path), column="final_test_accuracy")
    whole = truth.load_space(SPACE)
    whole[:] = 0  # the caller's copy
    assert truth.load(SPACE, HASHES[:2]).tolist() == truth.load_space(SPACE)[:2].tolist() != [0, 0]
    truth.describe(SPACE)
    GroundTruth(str(fake.path), column="final_test_accuracy").load_space(SPACE)
    assert len(calls) == 1
    GroundTruth(str(fake.path), column="final_train_accuracy").load_space(SPACE)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "name,content,format",
    [
        ("nasbench_only108.tfrecord", None, "nb101_tfrecord"),
        ("gt.csv", "arch,accuracy\n", "table"),
        ("gt_mean.txt", "0.5\n", "table"),
        ("gt.tsv", "arch,accuracy\n", "table"),
        ("zc_nasbench101.json", {"nasbench101": {"cifar10": {}}}, "naslib_json"),
        ("DARTS.json", [{"test_ep_top1": [1.0]}], "nds_json"),
        ("DARTS_fix-w-d.json", {"top": [], "mid": []}, "nds_json"),
        ("mid_first.json", {"mid": [], "top": []}, "nds_json"),
        ("late_key.json", {"zero_cost": {}, "nasbench101": {}}, "naslib_json"),
    ],
)
def test_auto_format(tmp_path, name, content, format):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1) if content is not None else "")
    assert GroundTruth(str(path)).resolved_format() == format
    assert GroundTruth(str(path), format="table").resolved_format() == "table"


@pytest.mark.parametrize("content,found", [({"nasbench201": {}}, "keys 'nasbench201'"), (7, "int")])
def test_auto_format_of_an_unknown_json(tmp_path, content, found):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=f"cannot tell its format from its top level \\({found}\\); set ground_truth.format"):
        GroundTruth(str(path)).resolved_format()
    path.write_text("{oops")
    with pytest.raises(ConfigError, match="other.json is not valid JSON"):
        GroundTruth(str(path)).resolved_format()


def test_absent_reader_module(tmp_path, monkeypatch):
    monkeypatch.setitem(table.READERS, "naslib_json", "no_such_reader")
    path = tmp_path / "zc.json"
    path.write_text(json.dumps({"nasbench101": {}}))
    with pytest.raises(ConfigError, match="ground_truth.format naslib_json needs module lightning_nas.groundtruth.no_such_reader"):
        GroundTruth(str(path), column="val_accuracy").load_space(SPACE)


def test_unknown_format():
    with pytest.raises(ConfigError, match="ground_truth.format: 'tfrecord' is not a known format; give one of auto, table, nb101_tfrecord"):
        GroundTruth("x.tfrecord", format="tfrecord")
