#!/usr/bin/env bash
# tools/install-deps.sh: install what kiln needs to build and test, from Debian's packages.
# Installs only what is missing; needs root (or sudo) only when something is missing.
#   KILN_WITH_TORCH=1  also install PyTorch and NumPy (to regenerate reference tensors)
#   KILN_WITH_BENCH=1  also what make bench needs (PyTorch, NumPy, OpenBLAS, node, npm)
set -euo pipefail

pkgs=(clang cmake make pkg-config libyaml-dev libcjson-dev libpcre2-dev libutf8proc-dev libclang-rt-14-dev python3)
# The AArch64 C library headers, so that tests/diff/isa.sh can compile --isa neon code
# (clang --target=aarch64-linux-gnu); without them that test skips.
[ "$(uname -m)" = aarch64 ] || pkgs+=(libc6-dev-arm64-cross)
if [ "${KILN_WITH_TORCH:-0}" = 1 ]; then
  pkgs+=(python3-torch python3-numpy)
fi
if [ "${KILN_WITH_BENCH:-0}" = 1 ]; then
  pkgs+=(python3-torch python3-numpy libopenblas0-pthread)
  command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "kiln: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
