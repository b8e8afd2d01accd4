#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image; /autograder/source holds the
# unpacked bundle and the network is available (it is not needed later: grading runs offline).
#
# 1. Python 3.11 (the course's version) from the OS packages when the image lacks it. Gradescope's
#    harness runs on the system `python3`, so that one is never replaced: the grader gets its own venv.
# 2. The grader's exact pins (requirements-grader.txt, generated from the course's requirements.txt).
#    torch comes from PyTorch's CPU index (COURSE_TORCH_INDEX; empty: only PyPI and PIP_FIND_LINKS),
#    the CUDA build on PyPI is gigabytes larger and useless here.
# 3. A check that the bundle is whole (model hashes, probes, configuration): a broken bundle fails the
#    image build with a message instead of every submission later.
# 4. Only root may enter /autograder/source (hidden probes, reference capstone): the grader copies what a
#    submission needs into its own workspace, and student code runs as an unprivileged uid.
set -euo pipefail

SOURCE=/autograder/source
VENV=/autograder/venv
TORCH_INDEX="${COURSE_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"

if ! command -v python3.11 >/dev/null 2>&1; then
    echo "setup.sh: installing python3.11 and python3.11-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3.11 python3.11-venv ca-certificates >/dev/null
fi

python3.11 -m venv "$VENV"
pip_args=(--no-cache-dir --disable-pip-version-check --requirement "$SOURCE/requirements-grader.txt")
if [ -n "$TORCH_INDEX" ]; then
    pip_args+=(--extra-index-url "$TORCH_INDEX")
fi
"$VENV/bin/python" -m pip install --quiet "${pip_args[@]}"

HF_HUB_OFFLINE=1 PYTHONPATH="$SOURCE" "$VENV/bin/python" -m course_utils.grading.gradescope check \
    --source "$SOURCE"

chmod 0700 "$SOURCE"
