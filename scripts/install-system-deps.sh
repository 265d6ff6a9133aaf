#!/usr/bin/env bash
# Debian packages audiorec needs: espeak-ng (the quickstart's synthetic corpus), GNU time
# (peak memory in the benchmarks) and Chromium (the tests open the HTML pages in it, driven by
# Playwright; no browser is ever downloaded at run time). Quick when they are already there.
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -x /usr/bin/time ] || missing+=(time)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "audiorec needs: ${missing[*]}; install them with your system's package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
