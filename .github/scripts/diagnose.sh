#!/usr/bin/env bash
# diagnose.sh DIR: keep what explains a failed run, for every kind cluster on this machine:
# kind's node logs, every pod described, and the events, into DIR/<cluster>/. Best effort: a
# command that fails is noted and the rest goes on. Writes no kubeconfig but its own.
set -uo pipefail
out=${1:?usage: diagnose.sh DIR}
mkdir -p "$out"
clusters=$(kind get clusters 2>/dev/null || true)
if [[ -z $clusters ]]; then
  echo "no kind clusters left to diagnose" | tee "$out/README.txt"
  exit 0
fi
for name in $clusters; do
  dir="$out/$name"
  mkdir -p "$dir"
  kind export logs "$dir/kind-logs" --name "$name" || echo "kind export logs failed" >> "$dir/errors.txt"
  kind get kubeconfig --name "$name" > "$dir/kubeconfig" || { echo "no kubeconfig" >> "$dir/errors.txt"; continue; }
  k=(kubectl --kubeconfig "$dir/kubeconfig")
  "${k[@]}" get nodes,pods -A -o wide > "$dir/get.txt" 2>&1 || echo "kubectl get failed" >> "$dir/errors.txt"
  "${k[@]}" describe pods -A > "$dir/describe-pods.txt" 2>&1 || echo "kubectl describe failed" >> "$dir/errors.txt"
  "${k[@]}" get events -A --sort-by=.lastTimestamp -o wide > "$dir/events.txt" 2>&1 \
    || echo "kubectl get events failed" >> "$dir/errors.txt"
  rm -f "$dir/kubeconfig"  # it holds the cluster's credentials; the artifact need not
done
echo "diagnostics in $out"
