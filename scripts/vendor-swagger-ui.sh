#!/usr/bin/env bash
# Vendor Swagger UI (swagger-ui-dist from npm) into webui/static/vendor/swagger-ui/ for the
# API documentation page (/api/v1/docs): no CDN at run time. The result is committed;
# re-run only to change the pinned version. Needs npm (only when run).
set -euo pipefail

SWAGGER_UI_VERSION="5.35.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/webui/static/vendor/swagger-ui"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"
npm pack --silent "swagger-ui-dist@${SWAGGER_UI_VERSION}" >/dev/null
mkdir -p pkg
tar -xzf "swagger-ui-dist-${SWAGGER_UI_VERSION}.tgz" -C pkg --strip-components=1

rm -rf "$DEST"
mkdir -p "$DEST"
cp pkg/swagger-ui-bundle.js pkg/swagger-ui.css pkg/LICENSE "$DEST/"
[ -f pkg/NOTICE ] && cp pkg/NOTICE "$DEST/"
echo "swagger-ui-dist@${SWAGGER_UI_VERSION}  license: $(node -e 'console.log(require("./pkg/package.json").license)')" \
  > "$DEST/VERSION.txt"
(cd "$DEST" && ls -la)
