#!/usr/bin/env bash
# Quick start 1: set up and run Lajur on the embedded default (SQLite database, Celery
# over kombu's SQLAlchemy transport: no Redis or PostgreSQL needed), with the demo
# offices, users and both SOPs deployed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/sbin/nginx ]; then  # `lajur web` serves through nginx, so slow clients cannot starve it
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
export LAJUR_DATA_DIR=${LAJUR_DATA_DIR:-$PWD/var}
HOST=${LAJUR_HOST:-127.0.0.1}
PORT=${LAJUR_PORT:-5000}
export LAJUR_BASE_URL=${LAJUR_BASE_URL:-http://$HOST:$PORT}
mkdir -p "$LAJUR_DATA_DIR/log"
L=.venv/bin/lajur
$L migrate
$L seed-demo > "$LAJUR_DATA_DIR/log/seed.txt"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
$L worker > "$LAJUR_DATA_DIR/log/worker.log" 2>&1 & pids+=($!)
$L beat > "$LAJUR_DATA_DIR/log/beat.log" 2>&1 & pids+=($!)
$L web --host "$HOST" --port "$PORT" > "$LAJUR_DATA_DIR/log/web.log" 2>&1 & pids+=($!)

for _ in $(seq 1 60); do
  if .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen('$LAJUR_BASE_URL/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
echo
echo "Lajur berjalan di / is running at: $LAJUR_BASE_URL"
cat "$LAJUR_DATA_DIR/log/seed.txt"
echo "Logs: $LAJUR_DATA_DIR/log/ (web, worker, beat). Ctrl-C stops everything."
wait -n "${pids[@]}"
