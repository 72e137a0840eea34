#!/usr/bin/env bash
# Install the Debian/Ubuntu packages voxbench needs: `setup-system.sh demo` for the built-in
# engines the default benchmark runs, `setup-system.sh test` (the default) for the whole suite.
# As root: apt-get installs what is missing. Otherwise: prints the exact command and stops.
set -euo pipefail

profile=${1:-test}
# the built-in engines: espeak-ng, FluidSynth and its General MIDI soundfont
packages=(espeak-ng fluidsynth fluid-soundfont-gm)
if [ "$profile" = test ]; then
  # a command-engine test pipes espeak-ng through sox
  packages+=(sox)
  # a built-in TTS engine (voices built in), and one of the spoken corpora
  packages+=(flite)
  # the PostgreSQL store tests start their own server (initdb + pg_ctl) on a free loopback port
  packages+=(postgresql)
  # benchmarks/loadgen.py's endpoint and reference tool; any nginx flavour will do
  command -v nginx >/dev/null 2>&1 || packages+=(nginx)
  command -v wrk >/dev/null 2>&1 || packages+=(wrk)
  # the browser tests of the HTML reports: Playwright drives Debian's Chromium (`playwright
  # install` downloads its own, which an offline machine cannot)
  packages+=(chromium chromium-headless-shell)
  # the quality extra compiles pesq and pysptk from source: a C compiler and Python's headers
  command -v gcc >/dev/null 2>&1 || packages+=(gcc)
elif [ "$profile" != demo ]; then
  echo "usage: $0 [demo|test]" >&2
  exit 2
fi
python=${PYTHON:-python3}
# Python.h for those builds: a Debian python3 has it from python3-dev (pyenv builds bring their own)
if [ "$profile" = test ] && ! "$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  packages+=(python3-dev)
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "voxbench needs Python 3.11 or newer; $python is $("$python" --version 2>&1)." >&2
  echo "Install it (e.g. apt-get install python3.11 python3.11-venv) and run: make PYTHON=python3.11 ..." >&2
  exit 1
fi
"$python" -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: not a Debian/Ubuntu system; install ${packages[*]} yourself." >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as nginx start a system service on install; the tests start their own
  # servers on free loopback ports, so keep apt from starting (and failing on) any daemon.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: missing system packages: ${missing[*]}" >&2
  echo "run:   sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
