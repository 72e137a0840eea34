#!/usr/bin/env bash
# Build llama-cpp-python's wheel (the `llm` extra) into a folder, once: PyPI has only its source.
# Usage: build-llama.sh PYTHON WHEEL_DIR. The Makefile runs it in the background while the other
# packages install; pip also caches the built wheel, so a later build on this machine takes seconds.
# Only the library is built (no llava, tests, examples, tools or C++ server): the Python server
# (python -m llama_cpp.server) needs no more. Build log: WHEEL_DIR/build.log.
set -euo pipefail
python=$1
dir=$2
version=0.3.36
mkdir -p "$dir"
if compgen -G "$dir/llama_cpp_python-$version-*.whl" >/dev/null; then
  exit 0
fi
echo "setup: building llama-cpp-python $version (compiles llama.cpp: ~10 min on 2 cores; log: $dir/build.log)"
start=$(date +%s)
if ! CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
  "$python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$dir" \
  "llama-cpp-python==$version" >"$dir/build.log" 2>&1; then
  echo "setup: building llama-cpp-python failed; the end of $dir/build.log:" >&2
  tail -n 30 "$dir/build.log" >&2
  exit 1
fi
echo "setup: llama-cpp-python built in $(( $(date +%s) - start )) s"
