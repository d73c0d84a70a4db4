"""GroundTruth.load: CSV by label, .txt by index, and one clear ConfigError per kind of mistake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.runs import SHARED_DATA, needs_shared_data
from lightning_nas.errors import ConfigError
from lightning_nas.groundtruth import GroundTruth
from lightning_nas.spaces import NB201Space, PaperASpace

SPACE = PaperASpace()
LABELS = SPACE.labels()


def value(index: int) -> float:
    return 0.5 + index / 1000


def write_csv(path, labels=LABELS, values=None, columns=("arch", "accuracy"), extra=None):
    values = [value(SPACE.index(SPACE.parse(label))) if label in LABELS else 0.1 for label in labels] if values is None else values
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


def test_partial_table_is_enough_for_a_pool(tmp_path):
    path = write_csv(tmp_path / "gt.csv", ["111", "434", "222"])
    gt = GroundTruth(str(path), partial=True)
    np.testing.assert_array_equal(gt.load(SPACE, ["222", "111"]), [value(21), value(0)])
    whole = gt.load_space(SPACE)
    assert whole.shape == (64,) and np.isnan(whole).sum() == 61 and whole[59] == value(59)


@pytest.mark.parametrize("rows", [3, 63])
def test_incomplete_table_needs_partial(tmp_path, rows):
    path = write_csv(tmp_path / "gt.csv", LABELS[:rows])
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path)).load(SPACE, ["111"])
    message = str(info.value)
    assert f"has {rows} rows but paper_a has 64 children" in message and "ground_truth.partial" in message
    assert "\n" not in message


def test_per_seed_table_is_rejected_by_its_row_count(tmp_path):
    path = write_csv(tmp_path / "gt.csv", LABELS * 3)
    for partial in (False, True):
        with pytest.raises(ConfigError, match=r"repeats labels \(192 rows, 64 distinct\)"):
            GroundTruth(str(path), partial=partial).load(SPACE, LABELS)


def test_whole_space_in_index_order(tmp_path):
    order = np.random.default_rng(1).permutation(64)
    path = write_csv(tmp_path / "gt.csv", [LABELS[i] for i in order])
    np.testing.assert_array_equal(GroundTruth(str(path)).load_space(SPACE), [value(i) for i in range(64)])


def test_relative_path_resolves_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    write_csv(tmp_path / "sub" / "gt.csv")
    monkeypatch.chdir(tmp_path)
    gt = GroundTruth("sub/gt.csv")
    assert gt.resolved_path() == tmp_path.resolve() / "sub" / "gt.csv"
    assert gt.load(SPACE, ["444"])[0] == value(63)
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(ConfigError) as info:
        gt.load(SPACE, ["444"])
    assert "working directory" in str(info.value) and str(tmp_path / "sub") in str(info.value)


def test_non_numeric_column(tmp_path):
    path = write_csv(tmp_path / "gt.csv", extra={"name": ["x"] * 64})
    with pytest.raises(ConfigError, match="'name' holds non-numbers, e.g. 'x'"):
        GroundTruth(str(path), column="name").load(SPACE, LABELS)


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
        GroundTruth(str(path), partial=True).load(SPACE, LABELS[:10])
    assert "'115'" in str(info.value) and "paper_a" in str(info.value)
    assert "1 labels" in str(info.value)


def test_duplicate_labels(tmp_path):
    path = write_csv(tmp_path / "gt.csv", LABELS + ["434"])
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(path)).load(SPACE, LABELS)
    assert "repeats labels" in str(info.value) and "'arch'" in str(info.value)


def test_child_absent_from_table(tmp_path):
    path = write_csv(tmp_path / "gt.csv", [label for label in LABELS if label != "321"])
    gt = GroundTruth(str(path), partial=True)
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


NB201_TABLES = SHARED_DATA / "ground_truth"
NB201_FULL = NB201_TABLES / "nb201_cifar10-valid_200ep_seedavg_full.csv"
needs_nb201 = pytest.mark.skipif(not NB201_FULL.is_file(), reason="shared NB201 ground truth absent")


@needs_nb201
def test_nb201_shared_tables_load_as_they_are():
    space = NB201Space()
    valid = GroundTruth(str(NB201_FULL), column="valid-accuracy", arch_column="arch_str").load_space(space)
    assert valid.shape == (15625,) and not np.isnan(valid).any()
    assert int(np.argmax(valid)) == 6111 and valid.max() == pytest.approx(91.61, abs=0.005)
    test = GroundTruth(
        str(NB201_TABLES / "nb201_test_200ep_seedavg_c10_c100_in16.csv"),
        column="CIFAR10TestAccuracy200Epochs",
        arch_column="ArchitectureString",
    ).load_space(space)
    assert int(np.argmax(test)) == 6111 and test.max() == pytest.approx(94.37, abs=0.005)
    twelve = GroundTruth(
        str(NB201_TABLES / "nb201_12ep_c10_c100_in16_valid_test.csv"), column="cifar10-val", arch_column="cellstr"
    )
    labels = space.labels([6111, 0, 9])
    assert twelve.load(space, labels).shape == (3,)
    from lightning_nas.metrics import kendall_tau

    assert kendall_tau(valid, test) == pytest.approx(0.894, abs=0.001)


NB201_V1_0 = NB201_TABLES / "nb201_cifar10_200ep_v1_0_naswot.csv"


@pytest.mark.skipif(not NB201_V1_0.is_file(), reason="shared NB201 v1.0 ground truth absent")
def test_nb201_v1_0_cifar10_test_accuracy_is_read_by_arch_string(tmp_path):
    """Paper B's yardstick: NAS-Bench-201 v1.0 ``cifar10`` test accuracy (trained on all 50k images)."""
    space = NB201Space()
    gt = GroundTruth(str(NB201_V1_0), column="test_top1", arch_column="cellstr")
    values = gt.load_space(space)
    assert values.shape == (15625,) and not np.isnan(values).any()
    assert values.max() == pytest.approx(94.3733, abs=1e-4) and values.min() == 10.0  # percent
    assert values[6111] == values.max() and values[1] == pytest.approx(93.66)
    np.testing.assert_array_equal(values, pd.read_csv(NB201_V1_0)["test_top1"].to_numpy())  # rows in index order
    # matched by the arch string, not by row order or the table's integer ``arch`` column
    shuffled = pd.read_csv(NB201_V1_0).sample(frac=1, random_state=0)
    shuffled["arch"] = np.arange(15625)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    again = GroundTruth(str(tmp_path / "shuffled.csv"), column="test_top1", arch_column="cellstr")
    np.testing.assert_array_equal(again.load_space(space), values)
    assert again.load(space, space.labels([6111, 1, 0])).tolist() == [values[6111], values[1], values[0]]
    # a different yardstick from the cifar10-valid table's valid-accuracy (tau about 0.89)
    from lightning_nas.metrics import kendall_tau

    valid = GroundTruth(str(NB201_FULL), column="valid-accuracy", arch_column="arch_str").load_space(space)
    assert kendall_tau(values, valid) == pytest.approx(0.892, abs=0.001)


@needs_nb201
@pytest.mark.parametrize(
    "column,arch_column,match",
    [
        ("valid_accuracy", "arch_str", "no column 'valid_accuracy' .*ground_truth.column.*columns: index, sol"),
        ("valid-accuracy", "arch", "no column 'arch' .*ground_truth.arch_column"),
        ("valid-accuracy", "sol", "15625 labels are not children of nb201, e.g. '532322'"),
    ],
)
def test_nb201_table_with_wrong_columns(column, arch_column, match):
    with pytest.raises(ConfigError, match=match):
        GroundTruth(str(NB201_FULL), column=column, arch_column=arch_column).load_space(NB201Space())


@needs_nb201
def test_nb201_truncated_table_and_unknown_arch_string(tmp_path):
    table = pd.read_csv(NB201_FULL, usecols=["arch_str", "valid-accuracy"])
    table.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ConfigError, match="has 15624 rows but nb201 has 15625 children"):
        GroundTruth(str(tmp_path / "short.csv"), column="valid-accuracy", arch_column="arch_str").load_space(NB201Space())
    table.loc[3, "arch_str"] = table.loc[3, "arch_str"].replace("~0|", "~1|", 1)
    table.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ConfigError) as info:
        GroundTruth(str(tmp_path / "bad.csv"), column="valid-accuracy", arch_column="arch_str").load_space(NB201Space())
    assert "1 labels are not children of nb201" in str(info.value) and table.loc[3, "arch_str"] in str(info.value)
