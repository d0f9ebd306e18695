#!/usr/bin/env bash
# Quick start 2: set up everything the tests need and run the whole suite.
# Tests use the real services on this machine: PostgreSQL, Redis, Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
apt_missing=()
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
# SOP export: WeasyPrint needs Pango; the tests turn PDF pages into PNGs with poppler's pdftoppm
command -v pdftoppm >/dev/null 2>&1 || apt_missing+=(poppler-utils)
ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || apt_missing+=(libpango-1.0-0 libpangoft2-1.0-0)
if [ ${#apt_missing[@]} -gt 0 ]; then
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

bash scripts/setup.sh
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"
