#!/usr/bin/env bash
# bench/run.sh: `make bench`, kiln's benchmark against PyTorch and ONNX Runtime.
#
#   bash bench/run.sh                     full sizes: BERT-base seq 128 and 512, GPT-2 small
#                                         prefill, and GPT-2 small decode (ms per token)
#   BENCH_QUICK=1 bash bench/run.sh       2 layers, width 128: a smoke run in a minute or two
#
# A benchmark, not a test: it measures and reports (bench/results/<date>.json and .svg;
# docs/bench.md explains every figure) and fails only when the harness cannot run.  It needs
# kiln built (build/kiln, or $KILN), Debian's python3-torch and python3-numpy, OpenBLAS
# (libopenblas0-pthread: PyTorch's matrix products; the reference BLAS would make PyTorch a
# straw man) and node with npm, from which it installs onnxruntime-node into bench/node_modules
# when missing.  Settings (BENCH_THREADS, BENCH_ROUNDS, BENCH_SECONDS, BENCH_CASES, ...) are
# listed at the top of bench/bench.py.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
mkdir -p bench/work

# ONNX Runtime, at the version bench/package-lock.json pins.  Its install script would fetch
# GPU libraries from outside the registry; the CPU library ships inside the package.
if [ ! -f bench/node_modules/onnxruntime-node/package.json ]; then
    echo "bench: installing onnxruntime-node into bench/node_modules" >&2
    (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi

# PyTorch's BLAS: Debian's torch calls whatever libblas.so.3 the alternatives system points
# at.  Point it at OpenBLAS for this run only, whatever the system default is.
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ -f "$OPENBLAS_DIR/libblas.so.3" ]; then
    export LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    echo "bench: warning: no OpenBLAS in $OPENBLAS_DIR; PyTorch uses the system BLAS" >&2
fi

# Timing environment: idle OpenMP threads sleep instead of spinning; OpenBLAS chooses its
# own kernels for this CPU (the pins below exist for reproducible tests, not for speed).
export OMP_WAIT_POLICY=passive
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

# The machine probes, compiled for this CPU.  With BENCH_ISA=avx2 (kiln built for AVX2 on a
# host that has AVX-512) the peak probe is AVX2's too, so that "share of peak" is that of the
# instructions kiln runs; other settings keep the host's widest vectors.
PEAK_FLAGS=()
if [ "${BENCH_ISA:-auto}" = avx2 ]; then
    PEAK_FLAGS=(-mno-avx512f)
fi
PROBES=bench/work                   # relative to the repository (cd above)
clang -O3 -march=native "${PEAK_FLAGS[@]}" -pthread -o "$PROBES/peak" bench/peak.c
clang -O3 -march=native -pthread -o "$PROBES/stream" bench/stream.c

exec /usr/bin/python3 bench/bench.py
