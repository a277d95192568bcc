#!/usr/bin/env bash
# demo/run.sh BUILD_DIR: the `make demo` job.
# Compiles models/gpt2.yaml at the size of the bundled trained character model, runs it on the
# reference window of Shakespeare text, prints the most likely next characters, and compares
# every logit with the reference logits that were computed in PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
kiln="$build/kiln"
data=demo/gpt2-shakespeare-char
work="$build/demo"
mkdir -p "$work"

echo "== kiln build models/gpt2.yaml at the trained model's size (4 layers, 128 wide, 65 chars)"
"$kiln" build models/gpt2.yaml \
  -D n_layer=4 -D n_head=4 -D n_embd=128 -D vocab_size=65 -D n_positions=64 \
  -o "$work/gpt2-char" --emit-c "$work/gpt2-char.c"
echo "   generated C: $work/gpt2-char.c ($(wc -l < "$work/gpt2-char.c") lines)"

echo "== run it on 64 characters of the validation text"
"$work/gpt2-char" --weights "$data/model.safetensors" \
  --input input_ids="$data/input_ids.npy" --output logits="$work/logits.npy"

python3 demo/show_next.py "$data/vocab.json" "$data/input_ids.npy" "$work/logits.npy"

echo "== compare with the PyTorch reference logits (tolerance 1e-4 of the largest logit)"
"$kiln" diff "$work/logits.npy" "$data/reference-logits.npy" --atol-scale 1e-4
