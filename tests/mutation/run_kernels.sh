#!/bin/bash
# Mutation testing of kernels/ with cosmic-ray on a random sample of mutants per group.
# Run from the root of a scratch clone (cosmic-ray edits the sources in place):
#   bash tests/mutation/run_kernels.sh N [GROUP...]     (groups: image volume proposals trees runtime)
# Sessions and reports go to $MUTATION_OUT (default /tmp/pcnnseg_mutation).
set -euo pipefail
n=${1:?usage: run_kernels.sh N [GROUP...]}; shift
groups=${*:-image volume proposals trees runtime}
out=${MUTATION_OUT:-/tmp/pcnnseg_mutation}
mkdir -p "$out/path"
# The kernels are imported as pcnnseg_kernels: point that name at this clone's kernels/.
ln -sfn "$PWD/kernels" "$out/path/pcnnseg_kernels"
export PYTHONPATH="$out/path:$PWD"
for g in $groups; do
  config=tests/mutation/kernels_$g.toml session=$out/$g.sqlite
  rm -f "$session"
  cosmic-ray init "$config" "$session"
  cr-filter-operators "$session" "$config"
  python tests/mutation/sample.py keep "$session" "$n" --seed 0
  start=$(date +%s)
  cosmic-ray exec "$config" "$session"
  echo "$g: $(( $(date +%s) - start )) s"
  cr-report "$session" --show-diff > "$out/$g.txt"
  python tests/mutation/sample.py summary "$session"
done
