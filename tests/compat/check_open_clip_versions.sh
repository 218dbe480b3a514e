#!/usr/bin/env bash
# Run the tests that touch open_clip against other open_clip_torch releases.
#
#   bash tests/compat/check_open_clip_versions.sh [VERSION ...]   (default: the lowest and newest supported)
#
# Each version gets a virtual environment that sees this environment's packages (torch, froster in
# editable mode, ...) and has only open_clip_torch replaced. Nothing else is installed. The result
# of each version is one line; docs/students.md records the last run.
set -uo pipefail
cd "$(dirname "$0")/../.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.26.1 3.3.0)
tests=(tests/students/test_open_clip_vit.py tests/core/test_clip_activation.py tests/students/test_contract.py
       tests/students/test_released_checkpoints.py tests/students/test_checkpoints.py)
status=0
for version in "${versions[@]}"; do
    env_dir="$(mktemp -d)/open_clip-$version"
    python -m venv --system-site-packages "$env_dir" >/dev/null
    if ! "$env_dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps "open_clip_torch==$version" >/dev/null 2>&1; then
        echo "open_clip_torch $version: could not be installed"; status=1; continue
    fi
    got=$("$env_dir/bin/python" -c "from importlib.metadata import version; print(version('open_clip_torch'))")
    summary=$("$env_dir/bin/python" -m pytest -q -p no:cacheprovider -n 2 "${tests[@]}" 2>&1 | tail -1)
    echo "open_clip_torch $got: $summary"
    case "$summary" in *failed*|*error*) status=1 ;; esac
    rm -rf "$env_dir"
done
exit $status
