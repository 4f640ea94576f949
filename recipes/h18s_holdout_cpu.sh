#!/usr/bin/env bash
# The base model of the adaptation benchmark (benchmarks/adapt.py): the v2 recipe without three
# sets, usiigaci_phase, emps_particles and coelho_nuclei, so that adapting to them can be
# measured on a model that never saw them. Starts from the v1 model (which never saw them
# either: git show bc79e1a:src/napari_ritm/weights/default.pth > runs/v1_default.pth);
# 3,000 steps of 8 (24,000 samples), lr x0.1 at 87 % and 96 %. Resumable with --resume:
#   setsid nohup bash recipes/h18s_holdout_cpu.sh --resume >> runs/holdout/log.txt 2>&1 &
set -euo pipefail
SHARED="${NAPARI_RITM_SHARED:-../shared}"
D="$SHARED/data"
exec .venv/bin/napari-ritm train \
  --data "$D/dsb2018" --data "$D/isbi2012_em" --data "$D/weizmann_horse" \
  --data "$D/stardist_nuclei2d" \
  --val-split recipes/shared_split.json --balance-sets \
  --init "${V1:-runs/v1_default.pth}" --out runs/holdout/model.pth \
  --crop 192 192 --batch-size 8 --epoch-len 800 --steps 3000 \
  --lr 5e-4 --backbone-lr-mult 1.0 --object-crops --single-click-prob 0.4 \
  --device cpu --threads 1 --workers 0 --seed 0 \
  --save-every 200 --val-every 10 --val-objects 28 --val-samples 16 --val-mode window \
  --no-progress "$@"
