#!/usr/bin/env bash
# Install what the poster tests need from Debian's packages, unless it is already there: a CJK
# font (posters in Chinese) and zbarimg (reads the posters' QR codes back). Needs root; safe to
# run again. `make run` does not need either: without a CJK font posters still render.
set -euo pipefail

missing=()
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
echo "Poster tools for tests: $(command -v zbarimg), $(fc-match -f '%{file}' ':lang=zh-cn' 2>/dev/null || echo 'no fontconfig')"
