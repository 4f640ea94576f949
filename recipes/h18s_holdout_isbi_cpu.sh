#!/usr/bin/env bash
# A second base model for the adaptation benchmark (benchmarks/adapt.py): the v2 recipe on every
# shared set except isbi2012_em, from the random initialisation (v1 and the first held-out base
# both saw isbi2012_em), so that adapting to serial-section EM can be measured on a model that
# never saw EM membranes. 5,000 steps of 8 (40,000 samples), lr x0.1 at 87 % and 96 %.
# Resumable with --resume:
#   setsid nohup bash recipes/h18s_holdout_isbi_cpu.sh --resume >> runs/holdout_isbi/log.txt 2>&1 &
set -euo pipefail
D="${NAPARI_RITM_SHARED:-../shared}/data"
exec .venv/bin/napari-ritm train --model h18s \
  --data "$D/dsb2018" --data "$D/weizmann_horse" --data "$D/coelho_nuclei" \
  --data "$D/usiigaci_phase" --data "$D/emps_particles" --data "$D/stardist_nuclei2d" \
  --val-split recipes/shared_split.json --balance-sets \
  --out runs/holdout_isbi/model.pth \
  --crop 192 192 --batch-size 8 --epoch-len 800 --steps 5000 \
  --lr 5e-4 --backbone-lr-mult 1.0 --object-crops --single-click-prob 0.4 --noise-prob 0.3 \
  --device cpu --threads 1 --workers 0 --seed 0 \
  --save-every 200 --val-every 20 --val-objects 28 --val-samples 16 --val-mode window \
  --no-progress "$@"
