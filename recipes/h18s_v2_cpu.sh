#!/usr/bin/env bash
# The recipe of the default model v2: h18s on all shared sets, crops at the scales the window
# predictor shows the network (--object-crops), 40 % single-click samples for the first click,
# bfloat16 autocast + channels_last where the CPU has native bfloat16, one thread.
# Starts from the v1 model (36,000 samples of our own training; get it with
# git show bc79e1a:src/napari_ritm/weights/default.pth > runs/v1_default.pth); 60,000 steps of 8
# (480,000 samples), lr x0.1 at 87 % and 96 %. A copy is kept every 1,000 steps
# (runs/v2/model.step<N>.pth); the shipped weights are the mean of the last ones
# (napari-ritm average, docs/models.md). From step 38,000 on, 30 % of the samples get photon
# noise (--noise-prob 0.3): the run's later checkpoints had grown sensitive to grainy
# low-count fluorescence (docs/models.md); a fresh run of this file has the noise from the
# start. Resumable: run it again with --resume (the
# trainer state is saved every 200 steps), e.g. in the background:
#   setsid nohup bash recipes/h18s_v2_cpu.sh --resume > runs/v2/log.txt 2>&1 &
# On a GPU: h18s_v2_gpu.sh (this recipe, batch 32, for a wall-clock budget; it runs this file
# with NAPARI_RITM_DATA, the data folder, and NAPARI_RITM, the command, set, and later options
# replacing these).
set -euo pipefail
D="${NAPARI_RITM_DATA:-${NAPARI_RITM_SHARED:-../shared}/data}"
# shellcheck disable=SC2086  # NAPARI_RITM may be a command with arguments
exec ${NAPARI_RITM:-.venv/bin/napari-ritm} train \
  --data "$D/dsb2018" --data "$D/isbi2012_em" --data "$D/weizmann_horse" \
  --data "$D/coelho_nuclei" --data "$D/usiigaci_phase" --data "$D/emps_particles" \
  --data "$D/stardist_nuclei2d" \
  --val-split recipes/shared_split.json --balance-sets \
  --init "${V1:-runs/v1_default.pth}" --out runs/v2/model.pth \
  --crop 192 192 --batch-size 8 --epoch-len 800 --steps 60000 \
  --lr 5e-4 --backbone-lr-mult 1.0 --object-crops --single-click-prob 0.4 --noise-prob 0.3 \
  --device cpu --threads 1 --workers 0 --seed 0 \
  --save-every 200 --keep-every 1000 --val-every 10 --val-objects 28 --val-samples 16 --val-mode window \
  --no-progress "$@"
