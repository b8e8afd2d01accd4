#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image; /autograder/source holds the
# unpacked bundle and the network is available (it is not needed later: grading runs offline).
#
# 1. Python 3.11 (the course's version) from the OS packages when the image lacks it. Gradescope's
#    harness runs on the system `python3`, so that one is never replaced: the grader gets its own venv.
# 2. The grader's exact pins (requirements-grader.txt, generated from the course's requirements.txt). No
#    torch: the grader computes its model answers with ONNX Runtime alone.
# 3. A check that the bundle is whole (model hashes, probes, configuration): a broken bundle fails the
#    image build with a message instead of every submission later.
# 4. Only root may enter /autograder/source (hidden probes, reference capstone): the grader copies what a
#    submission needs into its own workspace and runs student code as an unprivileged uid, or refuses to
#    grade (never as root).
set -euo pipefail

SOURCE=/autograder/source
VENV=/autograder/venv

if ! command -v python3.11 >/dev/null 2>&1; then
    echo "setup.sh: installing python3.11 and python3.11-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3.11 python3.11-venv ca-certificates >/dev/null
fi

python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
    --requirement "$SOURCE/requirements-grader.txt"

HF_HUB_OFFLINE=1 PYTHONPATH="$SOURCE" "$VENV/bin/python" -m course_utils.grading.gradescope check \
    --source "$SOURCE"

chmod 0700 "$SOURCE"
