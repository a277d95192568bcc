#!/usr/bin/env bash
# demo/run.sh BUILD_DIR: the `make demo` job.
# Compiles models/gpt2.yaml at the size of the bundled trained character model; generates
# text from "ROMEO:" greedily, streaming it, and checks it character for character against
# the continuation PyTorch wrote with the same model; then runs the model on the reference
# window of Shakespeare text, prints the most likely next characters, and compares every
# logit with the reference logits that were computed in PyTorch.
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

echo "== generate: 400 characters after \"ROMEO:\", greedy (--temp 0), 64-character context"
"$work/gpt2-char" --weights "$data/model.safetensors" --tokenizer "$data" \
  -p "ROMEO:
" -n 400 --temp 0 | tee "$work/romeo.txt"
if tail -n +2 "$data/reference-greedy-romeo.txt" | cmp -s - "$work/romeo.txt"; then
  echo "   the same 400 characters as PyTorch's greedy continuation ($data/reference-greedy-romeo.txt)"
else
  echo "   MISMATCH with PyTorch's greedy continuation ($data/reference-greedy-romeo.txt):" >&2
  diff <(tail -n +2 "$data/reference-greedy-romeo.txt") "$work/romeo.txt" | head -10 >&2
  exit 1
fi
echo "   sampled instead: $work/gpt2-char --weights $data/model.safetensors --tokenizer $data -p \"JULIET:\" -n 200 --temp 0.8 --seed 7"

echo "== run it on 64 characters of the validation text (.npy in, .npy out)"
"$work/gpt2-char" --weights "$data/model.safetensors" \
  --input input_ids="$data/input_ids.npy" --output logits="$work/logits.npy"

python3 demo/show_next.py "$data/vocab.json" "$data/input_ids.npy" "$work/logits.npy"

echo "== compare with the PyTorch reference logits (tolerance 1e-4 of the largest logit)"
"$kiln" diff "$work/logits.npy" "$data/reference-logits.npy" --atol-scale 1e-4
