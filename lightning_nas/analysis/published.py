"""The numbers paper A published, to print beside ours.

Zhang et al., "Deeper Insights into Weight Sharing in Neural Architecture Search", arXiv 2001.01431.
Every value is copied from the paper's tables (Table 1, 2, 3a, 3b) or text; none is computed here.
The tables use the same row labels and column names as the tables
:mod:`lightning_nas.analysis.paper_a_tables` computes, so
:func:`lightning_nas.analysis.paper_a_tables.beside_paper` can join them.
"""

from __future__ import annotations

import pandas as pd

#: Table 1: Kendall tau between the final ranks (epoch 200) of 10 instances: mean (S-Tau), max, min
#: over the 45 pairs. "Different epochs": the last 10 epochs of one instance, median over instances.
TABLE1 = pd.DataFrame(
    {
        "S-Tau": [0.5415, 0.3930, 0.4403, 0.0382, 0.7120, 0.5310],
        "Max Tau": [0.7977, 0.7021, 0.7163, 0.2181, 0.8191, 0.8752],
        "Min Tau": [0.2471, -0.0129, 0.0764, -0.1552, 0.6650, 0.0918],
    },
    index=pd.Index(
        ["Different seeds", "Different orders", "Diff. orders (shuffle)", "Random rank", "Ground truth", "Different epochs"],
        name="experiment",
    ),
)

#: Table 2: GT-Tau, top-1 and top-3 rank at epoch 200, mean and population std over 10 instances
#: ("Different epochs": over the last 10 epochs of one instance).
TABLE2 = pd.DataFrame(
    {
        "GT-Tau mean": [0.4567, 0.4625, 0.5108, 0.7985, 0.5053],
        "GT-Tau std": [0.1478, 0.0993, 0.0665, 0.0257, 0.1399],
        "T1R mean": [18.5, 16.9, 15.6, 4.8, 15.2],
        "T1R std": [1.2042, 5.7000, 8.4758, 3.8419, 6.9828],
        "T3R mean": [17.6, 11.5, 11.2, 1.6, 13.2],
        "T3R std": [0.4899, 5.3712, 5.5462, 0.9165, 7.4404],
    },
    index=pd.Index(["Different seeds", "Different orders", "Diff. orders (shuffle)", "Ground truth", "Different epochs"], name="experiment"),
)

_M = pd.Index([1, 2, 4, 8, 16, 32, 64], name="m")

#: Table 3a: group sharing with a random partition. GT-Tau-Mean-64 / GT-Tau-Std-64 over the last 64
#: mini-batches of each instance, mean and std over 10 instances.
TABLE3A_RANDOM = pd.DataFrame(
    {
        "GT-Tau-Mean-64 mean": [0.4988, 0.4577, 0.2736, 0.2539, 0.1658, 0.2903, 0.8032],
        "GT-Tau-Mean-64 std": [0.0320, 0.0424, 0.0216, 0.0463, 0.0316, 0.0256, 0.0255],
        "GT-Tau-Std-64 mean": [0.1497, 0.1371, 0.1340, 0.1462, 0.1255, 0.1104, 0.0151],
        "GT-Tau-Std-64 std": [0.0455, 0.0233, 0.0235, 0.0172, 0.0155, 0.0087, 0.0036],
    },
    index=_M,
)

#: Table 3a: group sharing with the similarity partition (contiguous blocks in index order).
TABLE3A_SIMILARITY = pd.DataFrame(
    {
        "GT-Tau-Mean-64 mean": [0.4988, 0.3425, 0.7075, 0.6917, 0.7200, 0.7360, 0.8032],
        "GT-Tau-Mean-64 std": [0.0320, 0.0490, 0.0137, 0.0267, 0.0213, 0.0164, 0.0255],
        "GT-Tau-Std-64 mean": [0.1497, 0.1442, 0.0702, 0.0457, 0.0411, 0.0364, 0.0151],
        "GT-Tau-Std-64 std": [0.0455, 0.0424, 0.0156, 0.0088, 0.0098, 0.0096, 0.0036],
    },
    index=_M,
)

#: Table 3b: prefix sharing (the stem and the first k cells shared), 2000 epochs.
TABLE3B = pd.DataFrame(
    {
        "GT-Tau-Mean-64 mean": [0.6960, 0.4837, 0.4159, 0.4448, 0.5174],
        "GT-Tau-Mean-64 std": [0.0193, 0.0822, 0.0504, 0.0689, 0.0340],
        "GT-Tau-Std-64 mean": [0.0129, 0.0939, 0.1925, 0.1881, 0.1592],
        "GT-Tau-Std-64 std": [0.0066, 0.0545, 0.0362, 0.0468, 0.0163],
    },
    index=pd.Index([0, 1, 2, 3, 4], name="k"),
)

#: §4.2's case study of m = 16 (random partition, ``partition_stable_16.txt``): GT-Tau-Mean-64 inside
#: each group, mean over the 16 groups, of the group-sharing run and of a share-all (m = 1) run whose
#: ranks are split into the same 16 groups.
CASE_STUDY_M16 = {"group sharing, m = 16": 0.2570, "share-all split into the 16 groups": 0.5610}

#: The authors' released trace (``share_all_acc_last128.csv``, one share-all instance) against
#: ``gt_mean.txt``: GT-Tau-Mean-64 / Std-64 and the last row's GT-Tau, T1R and T3R.
AUTHORS_TRACE = {"GT-Tau-Mean-64": 0.508, "GT-Tau-Std-64": 0.153, "GT-Tau": 0.504, "T1R": 11, "T3R": 11}

#: What the paper says about the figures that have no table.
CLAIMS = {
    "interference": (
        "Fig. 5 (§4.1): training child c in a mini-batch usually makes c the best child right after that "
        "step, even when c is a bad child; with the ordered sequence the accuracy curves repeat every "
        "64 mini-batches; GT-Tau varies between 0.0 and 0.6 over the last 128 mini-batches of one instance."
    ),
    "rank_distribution": (
        "Fig. 3 (§3.3, Insight 1): over 10 instances, or over the last 10 epochs of one instance, bad children "
        "are reliably ranked low while the good ones cannot be told apart, so the ranks of several evaluations "
        "can filter out bad children. The paper gives no number for the filter."
    ),
}
