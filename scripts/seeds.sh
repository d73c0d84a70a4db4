#!/usr/bin/env bash
# N instances of one config, one after another on this machine: seeds 0..N-1 (paper A's
# "different seeds"; the authors ran 10). Each run writes its own run directory
# <root>/runs/<config name>-seed<seed>-<time>/, which analysis.find_runs(root, "<config name>-*") collects.
#
#   scripts/seeds.sh configs/paper_a/share_all.yaml 10
#   scripts/seeds.sh configs/paper_a/share_all.yaml 2 --config configs/smoke.yaml   # extra arguments go to every run
#
# To vary the child order but keep the initialisation ("different orders"), loop over
# --model.sampling.seed instead, with --model.sampling.policy shuffle_once.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG N [lightning_nas fit arguments...]" >&2
    exit 2
fi
config=$1
count=$2
shift 2
name=$(basename "$config" .yaml)
for ((seed = 0; seed < count; seed++)); do
    lightning_nas fit --config "$config" --seed_everything "$seed" --snapshot.run_name "$name" "$@"
done
