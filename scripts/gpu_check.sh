#!/usr/bin/env bash
# GPU serving check of ECAD schedules (one command, < 8 minutes on one large GPU):
#   bash scripts/gpu_check.sh --out results/          # PixArt-XL-2 256/1024, FLUX.1-dev 1024, Wan 2.1 1.3B
#   bash scripts/gpu_check.sh --dry-run --out /tmp/x  # tiny config on CPU, a few seconds
# Writes gpu_check.json and gpu_check.md to --out. Other options: python scripts/gpu_check.py --help
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$HERE/../.venv/bin/python" ]]; then PY="$HERE/../.venv/bin/python"; else PY="python"; fi
fi
exec timeout "${GPU_CHECK_TIMEOUT:-470}" "$PY" "$HERE/gpu_check.py" "$@"
