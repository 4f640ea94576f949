#!/usr/bin/env bash
# Leave-one-set-out runs, for the figure a user with a new kind of image meets first: the v2
# recipe on the seven shared sets without one of them (LEAVE=coelho_nuclei, usiigaci_phase or
# emps_particles: fluorescence nuclei, phase-contrast cells, EM particles), and the same on all
# seven (LEAVE=none), each measured on the left-out set's val_report half
# (benchmarks/eval_dev.py --out benchmarks/results/leave_one_out.json). All four start from the
# v1 model, which never saw those three sets (git show bc79e1a:src/napari_ritm/weights/default.pth
# > runs/v1_default.pth), and train 3,000 steps of 8 (24,000 samples), lr x0.1 at 87 % and 96 %,
# one CPU thread: short, so they are weaker than the default model, and compared with each
# other only. Resumable:
#   LEAVE=usiigaci_phase setsid nohup bash recipes/h18s_loo_cpu.sh [--resume] \
#       >> runs/loo_usiigaci_phase/log.txt 2>&1 &
set -euo pipefail
D="${NAPARI_RITM_DATA:-${NAPARI_RITM_SHARED:-../shared}/data}"
LEAVE="${LEAVE:?set LEAVE to coelho_nuclei, usiigaci_phase, emps_particles or none}"
SETS=(dsb2018 isbi2012_em weizmann_horse coelho_nuclei usiigaci_phase emps_particles
      stardist_nuclei2d)
DATA=()
for s in "${SETS[@]}"; do
  [ "$s" = "$LEAVE" ] || DATA+=(--data "$D/$s")
done
if [ "${#DATA[@]}" -eq "$((2 * ${#SETS[@]}))" ] && [ "$LEAVE" != none ]; then
  echo "LEAVE=$LEAVE is not one of the shared sets: ${SETS[*]}" >&2
  exit 2
fi
mkdir -p "runs/loo_$LEAVE"
# shellcheck disable=SC2086  # NAPARI_RITM may be a command with arguments
exec ${NAPARI_RITM:-.venv/bin/napari-ritm} train "${DATA[@]}" \
  --val-split recipes/shared_split.json --balance-sets \
  --init "${V1:-runs/v1_default.pth}" --out "runs/loo_$LEAVE/model.pth" \
  --crop 192 192 --batch-size 8 --epoch-len 800 --steps 3000 \
  --lr 5e-4 --backbone-lr-mult 1.0 --object-crops --single-click-prob 0.4 --noise-prob 0.3 \
  --device cpu --threads 1 --workers 0 --seed 0 \
  --save-every 200 --val-every 10 --val-objects 28 --val-samples 16 --val-mode window \
  --no-progress "$@"
