#!/usr/bin/env bash
# Rewrites requirements.txt, the lock that the README's commands and CI install: resolves
# setup.cfg's ranges (runtime and test extras) in a new virtual environment and freezes every
# package with its exact version. Run it after changing a range in setup.cfg, then run the tests.
#   bash scripts/refresh_lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
{
    echo "# The lock: every package the project and its tests need, at the exact versions CI runs."
    echo "# Made by 'bash scripts/refresh_lock.sh' from setup.cfg's ranges; install it with"
    echo "#   pip install -r requirements.txt && pip install --no-deps -e ."
    "$venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check
} > requirements.txt.new
mv requirements.txt.new requirements.txt
echo "requirements.txt: $(grep -vc '^#' requirements.txt) packages pinned"
