"""GroundTruth.load: CSV by label, .txt by index, and one clear ConfigError per kind of mistake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.spaces import PaperASpace

SPACE = PaperASpace()
LABELS = SPACE.labels()


def value(index: int) -> float:
    return 0.5 + index / 1000


def write_csv(path, labels=LABELS, values=None, columns=("arch", "accuracy"), extra=None):
    values = [value(SPACE.index(SPACE.parse(l))) if l in LABELS else 0.1 for l in labels] if values is None else values
    table = pd.DataFrame({columns[0]: labels, columns[1]: values})
    if extra:
        for name, column in extra.items():
            table[name] = column
    table.to_csv(path, index=False)
    return path


def test_csv_loads_in_the_requested_order(tmp_path):
    # rows shuffled on disk; labels like "111" must stay strings, not become the number 111
    order = np.random.default_rng(0).permutation(64)
    path = write_csv(tmp_path / "gt.csv", [LABELS[i] for i in order])
    gt = GroundTruth(str(path))
    wanted = ["434", "111", "244", "112"]
    np.testing.assert_array_equal(gt.load(SPACE, wanted), [value(59), value(0), value(31), value(1)])
    np.testing.assert_array_equal(gt.load(SPACE, LABELS), [value(i) for i in range(64)])
    assert gt.load(SPACE, LABELS).dtype == float


def test_csv_with_other_columns(tmp_path):
    path = write_csv(
        tmp_path / "bench.csv",
        columns=("label", "valid_200"),
        extra={"test_12": np.linspace(0, 1, 64)},
    )
    gt = GroundTruth(str(path), column="test_12", arch_column="label")
    np.testing.assert_allclose(gt.load(SPACE, ["111", "444"]), [0.0, 1.0])
    gt = GroundTruth(str(path), column="valid_200", arch_column="label")
    np.testing.assert_array_equal(gt.load(SPACE, ["123"]), [value(6)])


def test_csv_subset_table_is_enough_for_a_pool(tmp_path):
    path = write_csv(tmp_path / "gt.csv", ["111", "434", "222"])
    np.testing.assert_array_equal(GroundTruth(str(path)).load(SPACE, ["222", "111"]), [value(21), value(0)])


def test_txt_loads_in_index_order(tmp_path):
    path = tmp_path / "gt_mean.txt"
    np.savetxt(path, [value(i) for i in range(64)])
    gt = GroundTruth(str(path))
    np.testing.assert_array_equal(gt.load(SPACE, LABELS), [value(i) for i in range(64)])
    np.testing.assert_array_equal(gt.load(SPACE, ["434", "111", "114"]), [value(59), value(0), value(3)])


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(missing)).load(SPACE, LABELS)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    assert "ground_truth.path" in str(info.value)


def test_missing_accuracy_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "gt.csv", columns=("arch", "valid_acc"), extra={"test_acc": 0.5})
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path), column="accuracy").load(SPACE, LABELS)
    message = str(info.value)
    assert "'accuracy'" in message and "ground_truth.column" in message
    assert "columns: arch, valid_acc, test_acc" in message


def test_missing_arch_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "gt.csv", columns=("name", "accuracy"))
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path)).load(SPACE, LABELS)
    message = str(info.value)
    assert "'arch'" in message and "ground_truth.arch_column" in message
    assert "columns: name, accuracy" in message


def test_unknown_label(tmp_path):
    path = write_csv(tmp_path / "gt.csv", LABELS[:10] + ["115"])
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path)).load(SPACE, LABELS[:10])
    assert "'115'" in str(info.value) and "paper_a" in str(info.value)
    assert "1 labels" in str(info.value)


def test_duplicate_labels(tmp_path):
    path = write_csv(tmp_path / "gt.csv", LABELS + ["434"])
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path)).load(SPACE, LABELS)
    assert "repeats labels" in str(info.value) and "'arch'" in str(info.value)


def test_child_absent_from_table(tmp_path):
    path = write_csv(tmp_path / "gt.csv", [l for l in LABELS if l != "321"])
    gt = GroundTruth(str(path))
    assert len(gt.load(SPACE, ["111", "434"])) == 2
    with pytest.raises(ConfigError) as info:
        gt.load(SPACE, ["111", "321", "434"])
    assert "lacks 1 of the evaluated children" in str(info.value) and "'321'" in str(info.value)


def test_empty_accuracy_for_an_evaluated_child(tmp_path):
    values = [value(i) for i in range(64)]
    values[5] = np.nan
    path = write_csv(tmp_path / "gt.csv", values=values)
    gt = GroundTruth(str(path))
    assert gt.load(SPACE, ["111"])[0] == value(0)
    with pytest.raises(ConfigError, match="empty"):
        gt.load(SPACE, [LABELS[5]])


@pytest.mark.parametrize("lines", [63, 65, 1])
def test_txt_wrong_line_count(tmp_path, lines):
    path = tmp_path / "gt.txt"
    np.savetxt(path, np.linspace(0.5, 0.9, lines))
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path)).load(SPACE, LABELS)
    message = str(info.value)
    assert f"has {lines} values" in message and "64 children" in message and "index order" in message


@needs_shared_data
def test_paper_a_released_ground_truth():
    gt = GroundTruth(str(SHARED_DATA / "paper_a" / "gt_mean.txt"))
    values = gt.load(SPACE, LABELS)
    assert values.shape == (64,)
    assert int(np.argmax(values)) == 59 and LABELS[59] == "434"
    assert values.max() == pytest.approx(0.8516, abs=5e-5)
    assert gt.load(SPACE, ["434"])[0] == values.max()
    assert (values > 0.5).all() and (values < 1).all()
