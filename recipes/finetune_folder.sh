#!/usr/bin/env bash
# Fine-tune a model on your own folder (<dir>/images + <dir>/labels, instance ids):
#   bash finetune_folder.sh /path/to/my_cells default my_cells.pth
# Up to 300 steps of 4 crops 192x192 at lr 1e-4 within 5 minutes on one thread; a quarter of the
# objects held back, and the model written only if it needs fewer clicks on them.
set -euo pipefail
DATA="$1"; INIT="${2:-default}"; OUT="${3:-finetuned.pth}"
napari-ritm finetune --init "$INIT" --data "$DATA" --out "$OUT" --minutes 5 "${@:4}"
