"""evaluate_children: identical to evaluating each child alone, batch by batch, in eval mode."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_nas.evaluation.evaluator import (
    Plan,
    _child_logits,
    batch_plan,
    candidate_plans,
    covering_archs,
    evaluate_children,
    tile_size,
    tile_threads,
    tiles,
)
from lightning_nas.spaces import PaperASpace
from lightning_nas.supernet import PaperASuperNet
from lightning_nas.supernet.batchnorm import preserved_bn_statistics, recalibrate

SPACE = PaperASpace()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def naive(model, archs, images, labels, batch_size):
    """One child at a time, the whole forward pass per batch (nothing computed once for several
    children); a batch's loss is its per-image losses summed in image order in float64."""
    acc, loss = [], []
    with torch.no_grad():
        for arch in archs:
            model.eval()
            correct, total_loss = 0, 0.0
            for start in range(0, len(labels), batch_size):
                x, y = images[start : start + batch_size], labels[start : start + batch_size]
                logits = model(x, arch)
                correct += int((logits.argmax(1) == y).sum())
                total_loss += float(F.cross_entropy(logits, y, reduction="none").double().cumsum(0)[-1])
            acc.append(correct / len(labels))
            loss.append(total_loss / len(labels))
    return np.array(acc), np.array(loss)


def trained_supernet(bn_mode: str) -> PaperASuperNet:
    """A small super-net whose BN running statistics were moved by train-mode forwards of several
    children, and whose weights were perturbed so the children disagree."""
    torch.manual_seed(0)
    net = PaperASuperNet(channels=8, num_cells=2, bn_mode=bn_mode)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        net.train()
        g = torch.Generator().manual_seed(1)
        for arch in SPACE.enumerate():
            net(2.0 + 3.0 * torch.randn(8, 3, 8, 8, generator=g), arch)
    return net


def data(n: int = 37, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("bn_mode", ["track", "batch"])
def test_equals_naive_per_child_loop(bn_mode):
    net = trained_supernet(bn_mode)
    if bn_mode == "track":
        bn = net.cells[0].edges[0][0][1]
        assert bn.num_batches_tracked.item() > 0 and not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    images, labels = data()
    archs = list(SPACE.enumerate())
    acc, loss = evaluate_children(net, archs, images, labels, batch_size=10)  # batches 10, 10, 10, 7
    want_acc, want_loss = naive(net, archs, images, labels, batch_size=10)
    assert acc.shape == loss.shape == (64,)
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(loss, want_loss)
    # the children really differ, so equality is not trivial
    assert len(set(loss.tolist())) > 32
    assert ((acc >= 0) & (acc <= 1)).all()
    assert np.all(np.isin(acc * 37, np.arange(38)))


@contextlib.contextmanager
def torch_threads(count: int):
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bn_mode", ["track", "recalibrate"])
def test_tiles_of_a_batch_change_nothing(bn_mode, threads):
    """Forward passes over tiles of each batch (the CPU default), in the calling thread or spread
    over two tile threads, give the per-child loop's numbers."""
    with torch_threads(threads):
        check_tiles_against_naive(bn_mode)


def check_tiles_against_naive(bn_mode):
    net = trained_supernet(bn_mode)
    images, labels = data(45)
    archs = list(SPACE.enumerate())
    calibration = [images[:16]] if bn_mode == "recalibrate" else None
    want = naive_calibrated(net, archs, images, labels, 30, calibration)
    for tile in (8, 12):  # batches of 30 and 15 in tiles of 10 + 10 + 10 and 15, or 8 + 7 + 8 + 7 and 15
        acc, loss = evaluate_children(net, archs, images, labels, batch_size=30, calibration=calibration, tile=tile)
        np.testing.assert_array_equal(acc, want[0])
        np.testing.assert_array_equal(loss, want[1])  # whichever plan this machine's kernels allow


@pytest.mark.parametrize("threads", [1, 2])
def test_tiles_assemble_each_childs_batch_in_image_order(threads, plan_verdict):
    """With tiles taken (forced: whether a machine's kernels allow them is not the point here),
    every child's accuracies and losses are those of the whole batch up to rounding: the tiles
    of each batch come back in order and are joined per child."""
    plan_verdict(True)
    net = trained_supernet("track")
    images, labels = data(45)
    archs = list(SPACE.enumerate())
    with torch_threads(threads):
        assert batch_plan(net.eval(), images[:30], 8, contextlib.nullcontext) == Plan(8, True)
        acc, loss = evaluate_children(net, archs, images, labels, batch_size=30, tile=8)
    want_acc, want_loss = naive(net, archs, images, labels, 30)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(acc, want_acc, atol=1.5 / len(images))  # at most one near-tie may flip


def test_tiles_are_used_only_where_they_are_exact():
    """A classifier whose output depends on the batch size (as a kernel choosing another algorithm
    for another size would, in the last bits): tiling is refused and the numbers stay the
    per-child loop's. With a per-image classifier the verdict is the machine's kernels' to give:
    the numbers are the loop's either way."""

    class BatchSized(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1e-3 * len(x)

    images, labels = data(30)
    archs = list(SPACE.enumerate())
    for sized in (False, True):
        net = trained_supernet("track")
        if sized:
            net.classifier = BatchSized(net.classifier.in_features, 10)
        if sized:
            assert batch_plan(net.eval(), images, 8, contextlib.nullcontext).tile == 30
        acc, loss = evaluate_children(net, archs, images, labels, batch_size=30, tile=8)
        want_acc, want_loss = naive(net, archs, images, labels, 30)
        np.testing.assert_array_equal(acc, want_acc)
        np.testing.assert_array_equal(loss, want_loss)
    assert covering_archs(net) == [(0, 0, 0), (1, 1, 1), (2, 2, 2), (3, 3, 3)]


def test_tiles_are_refused_where_the_thread_count_changes_the_logits():
    """Tile threads run their ops on one intra-op thread: an op whose result depends on the
    thread count (as a kernel splitting a reduction by threads would) makes the tiles inexact."""

    class ThreadSized(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1e-3 * torch.get_num_threads()

    images, labels = data(30)
    net = trained_supernet("track")
    net.classifier = ThreadSized(net.classifier.in_features, 10)
    with torch_threads(2):
        assert batch_plan(net.eval(), images, 8, contextlib.nullcontext).tile == 30
    with torch_threads(2):
        acc, loss = evaluate_children(net, list(SPACE.enumerate()), images, labels, batch_size=30, tile=8)
        want_acc, want_loss = naive(net, list(SPACE.enumerate()), images, labels, 30)
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(loss, want_loss)


def test_channels_last_is_refused_where_the_layout_changes_the_logits():
    """A cell op whose result depends on the layout (as a kernel summing in another order in
    channels-last would) keeps the cells in the input's layout; the numbers stay the loop's."""

    class LayoutSized(torch.nn.Module):
        def __init__(self, op):
            super().__init__()
            self.op = op

        def forward(self, x):
            return self.op(x) + 1e-3 * x.is_contiguous(memory_format=torch.channels_last)

    images, labels = data(30)
    archs = list(SPACE.enumerate())
    net = trained_supernet("track")
    net.cells[0].preprocess = LayoutSized(net.cells[0].preprocess)
    assert not batch_plan(net.eval(), images, 8, contextlib.nullcontext).channels_last
    np.testing.assert_array_equal(evaluate_children(net, archs, images, labels, 30, tile=8), naive(net, archs, images, labels, 30))


def test_channels_last_plan_runs_the_cells_in_channels_last():
    """Whether the plan is taken depends on the machine's kernels; what it computes does not."""
    net = trained_supernet("track").eval()
    layouts = []
    net.cells[0].preprocess.register_forward_pre_hook(lambda _, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    images, _ = data(16)
    archs = covering_archs(net)
    keys = [net.stage_keys(arch) for arch in archs]
    with torch.inference_mode():
        for channels_last in (False, True):
            got = dict((members[0], logits) for members, logits in _child_logits(net, archs, keys, images, channels_last))
            assert layouts.pop() is channels_last
            for i, arch in enumerate(archs):
                torch.testing.assert_close(got[i], net(images, arch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("exact", [True, False], ids=["tiles_exact", "tiles_inexact"])
def test_batch_plan_takes_the_first_plan_judged_exact(exact, plan_verdict):
    """Fastest first: tiles with channels-last cells where the verdict allows it, else one pass."""
    plan_verdict(exact)
    images, _ = data(30)
    assert batch_plan(trained_supernet("track").eval(), images, 8, contextlib.nullcontext) == (Plan(8, True) if exact else Plan(30))


def test_candidate_plans():
    cpu = torch.zeros(30, 3, 8, 8)
    assert candidate_plans(cpu, 8) == [Plan(8, True), Plan(8, False), Plan(30, True), Plan(30)]
    assert candidate_plans(cpu, 64) == [Plan(30, True), Plan(30)]
    assert candidate_plans(torch.zeros(30, 3, 8, 8, device="meta"), 8) == [Plan(30)]  # not a CPU: one pass


def test_tile_threads_map_in_order_on_one_intra_op_thread_each():
    with torch_threads(2):
        with tile_threads(2) as run:
            seen = list(run(lambda i: (i, torch.get_num_threads(), threading.get_ident()), range(8)))
            assert torch.get_num_threads() == 2  # the calling thread keeps its threads
        assert [i for i, _, _ in seen] == list(range(8))
        assert {threads for _, threads, _ in seen} == {1}
        assert threading.get_ident() not in {ident for _, _, ident in seen}
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [2]  # threads started afterwards get torch's thread count again
        with tile_threads(1) as run:  # one worker: the calling thread itself
            assert list(run(lambda i: threading.get_ident(), range(3))) == [threading.get_ident()] * 3


def naive_calibrated(net, archs, images, labels, batch_size, calibration):
    """:func:`naive`, after setting each child's exact BN statistics on ``calibration`` if given."""
    if calibration is None:
        return naive(net, archs, images, labels, batch_size)
    results = []
    with preserved_bn_statistics(net):
        for arch in archs:
            recalibrate(net, arch, calibration)
            results.append(naive(net, [arch], images, labels, batch_size))
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def test_tile_size_and_tiles():
    images = torch.zeros(4, 3, 32, 32)
    assert tile_size(PaperASuperNet(), images, 1024) == 16  # CPU, running statistics: cache-sized tiles
    assert tile_size(PaperASuperNet(), torch.zeros(4, 3, 64, 64), 1024) == 4
    assert tile_size(PaperASuperNet(bn_mode="batch"), images, 1024) == 1024  # statistics of the whole batch
    assert tiles(70, 32) == [slice(0, 23), slice(23, 46), slice(46, 70)]  # no 6-image remainder
    assert tiles(20, 32) == [slice(0, 20)]
    assert tiles(64, 32) == [slice(0, 32), slice(32, 64)]


def test_subset_and_order_of_children():
    net = trained_supernet("track")
    images, labels = data()
    all_acc, all_loss = evaluate_children(net, list(SPACE.enumerate()), images, labels, batch_size=16)
    picks = [59, 0, 17, 59]
    acc, loss = evaluate_children(net, [SPACE.arch(i) for i in picks], images, labels, batch_size=16)
    np.testing.assert_array_equal(acc, all_acc[picks])
    np.testing.assert_array_equal(loss, all_loss[picks])


def test_batch_size_matters_only_with_batch_statistics():
    images, labels = data(40)
    archs = [SPACE.arch(i) for i in (0, 21, 42, 63)]
    track = trained_supernet("track")
    a = evaluate_children(track, archs, images, labels, batch_size=40)[1]
    b = evaluate_children(track, archs, images, labels, batch_size=8)[1]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    batch = trained_supernet("batch")
    a = evaluate_children(batch, archs, images, labels, batch_size=40)[1]
    b = evaluate_children(batch, archs, images, labels, batch_size=8)[1]
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.parametrize("training", [True, False])
def test_restores_mode_and_leaves_state_alone(training):
    net = trained_supernet("track")
    net.train(training)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    images, labels = data()
    modes_inside = []
    handle = net.cells[1].edges[2][1].register_forward_hook(lambda m, *_: modes_inside.append(m.training))
    evaluate_children(net, [(1, 1, 1), (2, 3, 0)], images, labels, batch_size=16)
    handle.remove()
    assert len(modes_inside) >= 3 and not any(modes_inside)  # eval mode in every batch (and in batch_plan's checks)
    assert net.training is training
    assert all(m.training is training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_restores_mode_after_an_error():
    net = trained_supernet("track").train()
    images, labels = data()
    with pytest.raises(IndexError):  # no op 9 on edge 2
        evaluate_children(net, [(0, 0, 9)], images, labels, batch_size=16)
    assert net.training


def test_forward_context_and_progress():
    net = trained_supernet("batch")
    images, labels = data(37)
    inside, stem_calls, progress = [], [], []

    @contextlib.contextmanager
    def context():
        inside.append(True)
        yield
        inside.pop()

    net.stem_layers.register_forward_pre_hook(lambda *_: stem_calls.append(bool(inside)))
    archs = [(0, 0, 0), (3, 2, 3), (1, 2, 0)]
    acc, loss = evaluate_children(net, archs, images, labels, batch_size=16, forward_context=context, progress=progress.append)
    assert stem_calls and all(stem_calls)  # every forward pass ran inside the context
    assert progress == [3, 3, 3]  # one per batch: 16, 16, 5
    want_acc, want_loss = naive(net, archs, images, labels, 16)
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(loss, want_loss)


def test_known_values_on_a_controlled_net():
    """A net whose classifier ignores the features and always predicts class 3 with fixed logits."""
    net = PaperASuperNet(channels=4, num_cells=1)
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.bias.copy_(torch.arange(10.0) * (torch.arange(10) == 3))  # logit 3 for class 3
    labels = torch.tensor([3, 3, 3, 0, 1])
    images = torch.randn(5, 3, 8, 8)
    acc, loss = evaluate_children(net, [(0, 0, 0), (3, 3, 3)], images, labels, batch_size=2)
    np.testing.assert_allclose(acc, [0.6, 0.6])
    log_z = np.log(9 + np.exp(3.0))
    expected = (3 * (log_z - 3) + 2 * log_z) / 5
    np.testing.assert_allclose(loss, [expected, expected], rtol=1e-6)


def test_shared_key_prefixes_run_once_per_batch():
    """The prefix tree: the stem once for all children, the first edge once per op, and a child
    listed twice is computed once and counted at both positions."""
    net = trained_supernet("track")
    images, labels = data()
    calls: dict[int, int] = {}
    run_stage = net.run_stage

    def counting(index, state, arch):
        calls[index] = calls.get(index, 0) + 1
        return run_stage(index, state, arch)

    archs = [*SPACE.enumerate(), (3, 2, 1)]
    evaluate_children(net, archs, images, labels, batch_size=37)  # batch_plan's checks run once per net
    net.run_stage = counting
    acc, loss = evaluate_children(net, archs, images, labels, batch_size=37)
    assert calls[0] == calls[1] == 1  # stem and the first preprocessing: shared by all
    assert calls[2] == 4 and calls[3] == 16 and calls[4] == 64  # cell 0: one per distinct key prefix
    assert calls[net.num_stages - 1] == 64
    assert acc[-1] == acc[SPACE.index((3, 2, 1))] and loss[-1] == loss[SPACE.index((3, 2, 1))]


def test_first_cell_ops_run_once_per_distinct_input():
    """In the first cell an op's input is shared beyond the key prefix: O(0,2) sees the same x0
    under all four choices of O(0,1) and O(1,2) the same node 1 under all four choices of O(0,2),
    so each runs once per distinct input (4 and 16 times per batch), not once per prefix (16, 64)."""
    net = trained_supernet("track")
    images, labels = data()
    evaluate_children(net, list(SPACE.enumerate()), images, labels, batch_size=37)  # batch_plan's checks
    calls = {k: 0 for k in range(3)}
    for k in range(3):
        for op in net.cells[0].edges[k]:
            op.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
    acc, loss = evaluate_children(net, list(SPACE.enumerate()), images, labels, batch_size=37)
    assert calls == {0: 4, 1: 4, 2: 16}
    want_acc, want_loss = naive(net, list(SPACE.enumerate()), images, labels, 37)
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(loss, want_loss)


# -- NB201: the authors' BN track, and path dropout at evaluation -----------------------------------
def nb201_with_eval_path_dropout(bn_mode: str = "track"):
    from lightning_nas.spaces import NB201Space
    from lightning_nas.supernet import NB201SuperNet

    space = NB201Space()
    torch.manual_seed(0)
    net = NB201SuperNet(channels=4, num_cells=1, bn_mode=bn_mode, path_dropout=0.5, eval_path_dropout=True)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        net.train()
        for i in (0, 77, 4000):
            net(2.0 + torch.randn(8, 3, 8, 8), space.arch(i))
    archs = [space.arch(i) for i in (5, 300, 4000, 15624, 300)]  # a child twice
    return net, archs


def naive_drawn(net, archs, images, labels, batch_size, draws):
    """:func:`naive` for a super-net that draws at evaluation: batch b gets ``draws.at(b)``."""
    acc, loss = [], []
    net.eval()
    with torch.no_grad():
        for arch in archs:
            logits = [net(images[s : s + batch_size], arch, draws.at(s // batch_size)) for s in range(0, len(labels), batch_size)]
            per_image = [F.cross_entropy(out, labels[s : s + batch_size], reduction="none") for out, s in zip(logits, range(0, len(labels), batch_size))]
            acc.append(int((torch.cat(logits).argmax(1) == labels).sum()) / len(labels))
            loss.append(sum(float(p.double().cumsum(0)[-1]) for p in per_image) / len(labels))
    return np.array(acc), np.array(loss)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bn_mode", ["track", "batch"])
def test_eval_path_dropout_equals_the_per_child_loop(bn_mode, threads):
    from lightning_nas.supernet.eval_draws import EvalDraws

    net, archs = nb201_with_eval_path_dropout(bn_mode)
    images, labels = data(45)
    draws = EvalDraws(11, ("epoch", 3))
    with torch_threads(threads):
        want = naive_drawn(net, archs, images, labels, 20, draws)
        for tile in (None, 8):  # whichever plan this machine's kernels allow
            got = evaluate_children(net, archs, images, labels, batch_size=20, tile=tile, draws=draws)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    assert got[1][1] == got[1][4] and len(set(got[1].tolist())) == 4


def test_eval_path_dropout_masks_do_not_depend_on_the_tiles(plan_verdict):
    """Tiles forced (whether the kernels allow them is not the point): every image keeps the mask
    of its place in the whole batch, so the numbers are the whole batch's up to rounding (a tile
    drawing its own masks would drop other paths and change the losses by far more)."""
    from lightning_nas.supernet.eval_draws import EvalDraws

    plan_verdict(True)
    net, archs = nb201_with_eval_path_dropout("track")
    images, labels = data(45)
    draws = EvalDraws(11, ("epoch", 3))
    assert batch_plan(net.eval(), images[:20], 8, contextlib.nullcontext, draws.at(0)) == Plan(8, True)
    acc, loss = evaluate_children(net, archs, images, labels, batch_size=20, tile=8, draws=draws)
    want_acc, want_loss = naive_drawn(net, archs, images, labels, 20, draws)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(acc, want_acc, atol=1.5 / len(images))
    other = evaluate_children(net, archs, images, labels, batch_size=20, tile=8, draws=EvalDraws(11, ("epoch", 4)))[1]
    assert np.abs(other - loss).max() > 1e-3


def test_draws_are_required_exactly_where_the_supernet_draws():
    from lightning_nas.supernet.eval_draws import EvalDraws

    net, archs = nb201_with_eval_path_dropout()
    images, labels = data(10)
    with pytest.raises(ValueError, match="pass draws"):
        evaluate_children(net, archs, images, labels, batch_size=10)
    paper_a = trained_supernet("track")
    with_draws = evaluate_children(paper_a, [(0, 1, 2)], images, labels, batch_size=10, draws=EvalDraws(0, ("epoch", 1)))
    np.testing.assert_array_equal(with_draws, evaluate_children(paper_a, [(0, 1, 2)], images, labels, batch_size=10))


def test_tile_size_is_the_batch_where_any_bn_uses_batch_statistics():
    from lightning_nas.supernet import NB201SuperNet

    images = torch.zeros(4, 3, 32, 32)
    assert tile_size(NB201SuperNet(channels=2, num_cells=1, bn_mode="track"), images, 1024) == 16
    assert tile_size(NB201SuperNet(channels=2, num_cells=1, bn_mode="track_stem_head"), images, 1024) == 1024  # cell ops
    assert tile_size(NB201SuperNet(channels=2, num_cells=1, bn_mode="batch"), images, 1024) == 1024


# -- the evaluation service (snapshot and search) -------------------------------------------------
class FakeData:
    """The two methods of a data module the service uses; counts the calibration requests."""

    def __init__(self, n: int = 20) -> None:
        self.images, self.labels = data(n)
        self.calibration_requests: list[int] = []

    def eval_tensors(self):
        return self.images, self.labels

    def calibration_batches(self, num_batches: int):
        self.calibration_requests.append(num_batches)
        return [2.0 * b for b in data(6 * num_batches, seed=7)[0].split(6)]


@pytest.mark.parametrize("bn_mode", ["track", "recalibrate"])
def test_service_equals_evaluate_children_on_the_data_module(bn_mode):
    from lightning_nas.evaluation import EvaluationService

    net, source = trained_supernet(bn_mode), FakeData()
    archs = [SPACE.arch(i) for i in (0, 5, 17, 63)]
    service = EvaluationService(source, batch_size=8, recalibration_batches=2, eval_images=15)
    got = service.evaluate(net, archs, seed=0, position=("epoch", 1))
    calibration = source.calibration_batches(2) if bn_mode == "recalibrate" else None
    want = evaluate_children(net, archs, source.images[:15], source.labels[:15], 8, calibration=calibration)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    service.evaluate(net, archs[:1], seed=0, position=("epoch", 2))
    assert source.calibration_requests == ([2, 2] if bn_mode == "recalibrate" else [])  # the service's once, kept


def test_service_shares_children_over_ranks_and_gathers_them(monkeypatch):
    from lightning_nas.evaluation import EvaluationService, service

    monkeypatch.setattr(service, "broadcast_buffers", lambda module: None)  # one process plays both ranks
    sent: dict[int, torch.Tensor] = {}

    class Rank:
        world_size = 2

        def __init__(self, rank: int) -> None:
            self.global_rank = rank

        def all_gather(self, tensor):
            sent[self.global_rank] = tensor
            return torch.stack([sent.get(rank, tensor) for rank in range(2)])

    net, archs = trained_supernet("track"), [SPACE.arch(i) for i in (0, 5, 17, 40, 63)]
    evaluation = EvaluationService(FakeData(), batch_size=8, recalibration_batches=1)
    evaluation.evaluate(net, archs, 0, ("epoch", 1), strategy=Rank(1))
    sharded = evaluation.evaluate(net, archs, 0, ("epoch", 1), strategy=Rank(0))
    whole = evaluation.evaluate(net, archs, 0, ("epoch", 1))
    np.testing.assert_array_equal(sharded[0], whole[0])
    np.testing.assert_array_equal(sharded[1], whole[1])
    assert sent[0].shape == sent[1].shape == (2, 3)  # shares of 3 and 2 children, padded to 3
