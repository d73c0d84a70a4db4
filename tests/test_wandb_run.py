"""The W&B side of a run without W&B: dotted config, experiment groups, init arguments, summaries."""

from __future__ import annotations

from lightning_nas.wandb_run import (
    MAX_GROUP_LENGTH,
    configure_logger,
    dotted,
    experiment_group,
    init_arguments,
    run_config,
    summary_of,
)

FILES = ["configs/paper_a/share_all.yaml", "configs/smoke.yaml"]
CONFIG = {
    "seed_everything": 0,
    "trainer": {"max_epochs": 2, "default_root_dir": "out", "logger": {"init_args": {"project": "p"}}},
    "model": {"supernet": {"init_args": {"bn_mode": "track"}}, "sampling": {"policy": "round_robin", "seed": None}},
    "snapshot": {"run_name": "share_all"},
    "config": FILES,
}


def _with(tree: dict, key: str, value) -> dict:
    flat = dotted(tree)
    flat[key] = value
    out: dict = {}
    for dotted_key, leaf in flat.items():
        *parents, last = dotted_key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = leaf
    return out


def test_dotted_flattens_nested_dicts_and_keeps_lists_and_none_as_leaves():
    assert dotted({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": {}}) == {"a.b": 1, "a.c": [1, 2], "d": None, "e": {}}


def test_group_is_the_config_files_when_nothing_is_given_on_the_command_line():
    assert experiment_group(FILES, CONFIG, CONFIG) == "share_all+smoke"


def test_seed_output_folders_logger_and_run_name_do_not_change_the_group():
    given = CONFIG
    for key, value in [("seed_everything", 7), ("trainer.default_root_dir", "elsewhere"),
                       ("trainer.logger.init_args.project", "q"), ("snapshot.run_name", "x"),
                       ("model.sampling.seed", 3)]:
        given = _with(given, key, value)
    assert experiment_group(FILES, CONFIG, given) == "share_all+smoke"


def test_a_changed_key_names_the_group_without_init_args():
    given = _with(CONFIG, "model.supernet.init_args.bn_mode", "batch")
    assert experiment_group(FILES, CONFIG, given) == "share_all+smoke-model.supernet.bn_mode=batch"
    two = _with(given, "trainer.max_epochs", 5)
    assert experiment_group(FILES, CONFIG, two) == "share_all+smoke-model.supernet.bn_mode=batch,trainer.max_epochs=5"


def test_a_long_list_of_changes_becomes_a_stable_hash():
    given = _with(CONFIG, "model.supernet.init_args.bn_mode", "b" * MAX_GROUP_LENGTH)
    group = experiment_group(FILES, CONFIG, given)
    assert group.startswith("share_all+smoke-") and len(group) == len("share_all+smoke-") + 8
    assert experiment_group(FILES, CONFIG, given) == group
    other = _with(CONFIG, "model.supernet.init_args.bn_mode", "c" * MAX_GROUP_LENGTH)
    assert experiment_group(FILES, CONFIG, other) != group


def test_without_files_config_every_defining_key_counts():
    group = experiment_group([], None, {"trainer": {"max_epochs": 2}, "seed_everything": 1})
    assert group == "defaults-trainer.max_epochs=2"


def test_init_arguments_name_job_type_and_tags():
    arguments = init_arguments("validate", "g", "nb201", "batch", "fairnas")
    assert arguments == {"group": "g", "job_type": "evaluate", "tags": ["space:nb201", "bn:batch", "sampling:fairnas"]}
    assert init_arguments("fit", "g", "paper_a", "track", "round_robin")["job_type"] == "fit"


def test_configure_logger_keeps_what_the_config_set_and_leaves_a_started_run_alone():
    class Logger:
        _experiment = None
        _wandb_init = {"group": "mine", "job_type": None}

    logger = Logger()
    configure_logger(logger, {"group": "g", "job_type": "fit", "tags": ["t"]})
    assert logger._wandb_init == {"group": "mine", "job_type": "fit", "tags": ["t"]}
    logger._experiment, logger._wandb_init = object(), {}
    configure_logger(logger, {"group": "g"})
    assert logger._wandb_init == {}


def test_run_config_is_meta_dotted_with_the_config_at_the_top_and_the_children_counted():
    meta = {"seed": 3, "space": "paper_a", "children": ["111", "112"], "child_indices": [0, 1],
            "versions": {"torch": "2"}, "ground_truth": {"path": "gt.csv", "resolved_path": "/gt.csv"},
            "config": {"data": {"init_args": {"eval_split": "test"}}}}
    assert run_config(meta) == {"seed": 3, "space": "paper_a", "versions.torch": "2", "ground_truth.path": "gt.csv",
                                "ground_truth.resolved_path": "/gt.csv", "data.init_args.eval_split": "test", "children": 2}


def test_accuracies_summarise_as_their_maximum_and_correlations_as_their_last_value():
    assert summary_of("supernet/mean_acc") == "max"
    assert [summary_of(k) for k in ("gt/tau", "gt/sparse_tau", "stability/spearman_prev", "gt/top1_rank")] == ["last"] * 4
