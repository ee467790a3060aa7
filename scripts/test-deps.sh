#!/usr/bin/env bash
# Installs the storage servers the remote-state tests start on 127.0.0.1: moto (S3) into a
# project-local venv and Azurite (Azure Blob) into a project-local node_modules, both under
# target/test-tools/. Pinned versions; a second run with them in place does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
AZURITE_VERSION=3.37.0
TOOLS=target/test-tools
mkdir -p "$TOOLS"

if [[ "$(cat "$TOOLS/moto.version" 2>/dev/null)" != "$MOTO_VERSION" ]]; then
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    echo "$MOTO_VERSION" > "$TOOLS/moto.version"
fi

if [[ "$(cat "$TOOLS/azurite.version" 2>/dev/null)" != "$AZURITE_VERSION" ]]; then
    mkdir -p "$TOOLS/node"
    [[ -f "$TOOLS/node/package.json" ]] || echo '{"private": true}' > "$TOOLS/node/package.json"
    npm install --prefix "$TOOLS/node" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
    echo "$AZURITE_VERSION" > "$TOOLS/azurite.version"
fi
