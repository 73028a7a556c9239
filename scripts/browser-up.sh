#!/usr/bin/env bash
# Install Debian's Chromium and a font with Chinese glyphs for the browser tests, unless they are
# already there. Needs root; safe to run again.
set -euo pipefail

if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  echo "Installing Chromium from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium fonts-wqy-microhei >&2
fi
echo "Browser for tests: $(/usr/bin/chromium --version 2>/dev/null)"
