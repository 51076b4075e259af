#!/usr/bin/env bash
# Installs Debian's chromium (and the Liberation fonts the report's charts are
# measured with) for the report package's headless-browser test, skipping the
# install when both are present.
set -euo pipefail
fonts=/usr/share/fonts/truetype/liberation
if command -v chromium >/dev/null 2>&1 && [ -d "$fonts" ]; then
  echo "ensure-chromium: $(command -v chromium) present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "ensure-chromium: chromium missing and not root: install Debian's chromium and fonts-liberation packages" >&2
    exit 1
  fi
  SUDO=sudo
fi
echo "ensure-chromium: installing chromium fonts-liberation"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
command -v chromium >/dev/null
echo "ensure-chromium: $(chromium --version 2>/dev/null || echo chromium installed)"
