#!/usr/bin/env bash
# N instances of one config (seeds 0..N-1) as a study of one entry: writes
# <root>/study.yaml (root: outputs/studies/<config name>, or $LIGHTNING_NAS_STUDIES/<config name>) and runs
# 'lightning_nas study run' on it, so calling it again skips the finished seeds and resumes interrupted ones.
#
#   scripts/seeds.sh configs/paper_a/share_all.yaml 10
#   scripts/seeds.sh configs/paper_a/share_all.yaml 2 --config configs/smoke.yaml      # more configs and --key value
#                                                                                        # options go to every run
#   scripts/seeds.sh configs/paper_a/share_all.yaml 10 -- --backend slurm --partition gpu   # after --: 'study run' options
#   scripts/seeds.sh configs/paper_a/share_all.yaml 10 -- --backend wandb                   # a W&B sweep file
#
# Then 'lightning_nas study status|collect <root>/study.yaml'. Runs live in <root>/runs/<run id>/runs/
# <config name>-seed<seed>-<time>/. For several configs write a study file (studies/*.yaml, docs/studies.md).
# To vary the child order but keep the initialisation ("different orders"), use such a file with
# seed_key: model.sampling.seed.
set -euo pipefail
if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 CONFIG N [--config FILE | --key value | --key=value ...] [-- study run options...]" >&2
    exit 2
fi
quote() { printf "'%s'" "${1//\'/\'\'}"; }  # a YAML single-quoted string
config=$1
count=$2
shift 2
name=$(basename "$config" .yaml)
configs=$(quote "$config")
overrides=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case $1 in
        --config=*) configs+=", $(quote "${1#--config=}")"; shift ;;
        --config) configs+=", $(quote "${2:?$0: --config needs a file}")"; shift 2 ;;
        --*=*) key=${1%%=*}; overrides+="      ${key#--}: ${1#*=}"$'\n'; shift ;;
        --*) overrides+="      ${1#--}: ${2:?$0: $1 needs a value}"$'\n'; shift 2 ;;
        *) echo "$0: expected --config FILE or --key value, got '$1'" >&2; exit 2 ;;
    esac
done
[ "${1:-}" = "--" ] && shift
root="${LIGHTNING_NAS_STUDIES:-outputs/studies}/$name"
mkdir -p "$root"
{
    echo "# Written by scripts/seeds.sh: $count instances of $config."
    echo "name: $(quote "$name")"
    echo "root: $(quote "$root")"
    echo "seeds: [$(seq -s ', ' 0 $((count - 1)))]"
    echo "runs:"
    echo "  - name: $(quote "$name")"
    echo "    configs: [$configs]"
    if [ -n "$overrides" ]; then
        echo "    overrides:"
        printf '%s' "$overrides"
    fi
} > "$root/study.yaml"
exec lightning_nas study run "$root/study.yaml" "$@"
