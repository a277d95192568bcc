# tests/badinput/cases.sh: the bad-input cases, sourced by run.sh (which documents `check`).
#
# One function per case, named by its stable id badinput.<area>.<case>; badinput.cmake
# registers each as a ctest of the same name.  Areas:
#
#   weights   the safetensors file given to a model binary (and to kiln interp)
#   inputs    the .npy inputs of a model binary: the file, then its fit to the declaration
#   cli       the model binary's command line and its outputs
#   kiln      the kiln driver's command line (build, emit, inspect, interp)
#   diff      kiln diff
#
# A case runs in its own empty folder with an empty out/ (the output folder that must stay
# empty), makes its bad file there with the helpers in run.sh (st, st_raw, npy, f32, i32, i64,
# zeros) and changes one thing in a valid command line (SEED_W, SEED_IN, SEED_OUT, ...).
# A few cases are controls that must succeed (status 0): inputs that look unusual but are
# valid, so the checks are known not to reject good files.  `skip REASON` ends a case that
# cannot be tested here; `pending REASON` marks a case whose check does not exist yet (it
# reports as skipped while it fails, and says so once it passes).
#
# Model names in messages: seed_bert_layer (SEED, one f32 input), gpt2 (GPT2, i32 input_ids,
# weight prefix 'transformer.'), bert (BERT, three i32 inputs, two outputs, prefix 'bert.').
# Bounds for all three: batch <= 2, seq <= 4; width 8; vocab 16 (gpt2, bert).

S=seed_bert_layer   # the seed model's name in its messages

# ---------------------------------------------------------------------------------------
# weights: the file itself

badinput.weights.nonexistent() {
    check 1 "$S: error: nope.safetensors: cannot open weights: No such file or directory" \
        "$SEED" --weights nope.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.directory() {
    mkdir w.safetensors
    check 1 "$S: error: w.safetensors: is a directory, not a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# A FIFO is refused before it is opened for reading, so nothing blocks (the timeout in
# `check` catches a hang).
badinput.weights.fifo() {
    mkfifo w.safetensors
    local TIMEOUT=10
    check 1 "$S: error: w.safetensors: is a FIFO (named pipe), not a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.empty() {
    : >w.safetensors
    check 1 "$S: error: w.safetensors: file is empty, not a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.unreadable() {
    if [ "$(id -u)" -eq 0 ]; then
        skip "running as root, which reads a file whatever its permissions"
        return
    fi
    cp "$FIX/seed.safetensors" w.safetensors && chmod 000 w.safetensors
    check 1 "$S: error: w.safetensors: cannot open weights: Permission denied" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.too_short() {
    printf 'abc' >w.safetensors
    check 1 "$S: error: w.safetensors: file is 3 bytes, too short for the 8-byte header length of a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# A .npy given where the weights go: its magic read as a length is absurd.
badinput.weights.not_safetensors() {
    cp "$FIX/seed.hidden_states.npy" w.safetensors
    check 1 "$S: error: w.safetensors: header length 379676406402707 is larger than the rest of the file (216 bytes); the file is truncated or not a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# weights: the header length and the header text

badinput.weights.header_length_zero() {
    st_raw w.safetensors 0 '{}' 8
    check 1 "$S: error: w.safetensors: header length is 0; not a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.header_beyond_file() {
    st_raw w.safetensors 1000 '{}' 6
    check 1 "$S: error: w.safetensors: header length 1000 is larger than the rest of the file (8 bytes); the file is truncated or not a safetensors file" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# 2^64 - 1: the length must not wrap around when added to anything.
badinput.weights.header_length_max() {
    st_raw w.safetensors -1 '{}' 6
    check 1 "$S: error: w.safetensors: header length 18446744073709551615 is larger than the rest of the file (8 bytes)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# The cap applies even when the file is big enough: a sparse file of 100 MB and a bit, so
# nothing is written to disk.
badinput.weights.header_over_cap() {
    st_raw w.safetensors 100000001 '{' 0
    truncate -s 100000100 w.safetensors
    check 1 "$S: error: w.safetensors: header length 100000001 is above the limit of 100000000 bytes" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# The file ends inside the header.
badinput.weights.truncated_in_header() {
    head -c 100 "$FIX/seed.safetensors" >w.safetensors
    check 1 "$S: error: w.safetensors: header length 912 is larger than the rest of the file (92 bytes)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# The file ends inside the data: the last tensor in the header runs past the end.
badinput.weights.truncated_in_data() {
    head -c -6 "$FIX/seed.safetensors" >w.safetensors
    check 1 "$S: error: w.safetensors: tensor 'norm2.bias': data_offsets [2368, 2400] run past the end of the data buffer (2394 bytes); the file may be truncated" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.header_not_utf8() {
    st_raw w.safetensors 8 $'{"a\xff":1}' 0
    check 1 "$S: error: w.safetensors: header is not valid UTF-8 text (byte 0xff at byte 3 of the header)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.header_nul() {
    { le 8 4; printf '{}\0 '; } >w.safetensors
    check 1 "$S: error: w.safetensors: header is not valid UTF-8 text (byte 0x00 at byte 2 of the header)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.invalid_json() {
    st_raw w.safetensors 16 '{"a": {"dtype" }' 0
    check 1 "$S: error: w.safetensors: header is not valid JSON: error at byte 15 of the header (file offset 23), near '}'" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.json_trailing_data() {
    st_raw w.safetensors 8 '{} {}   ' 0
    check 1 "$S: error: w.safetensors: header has data after the JSON object at byte 3 of the header" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.json_not_object() {
    st_raw w.safetensors 8 '[1, 2]  ' 0
    check 1 "$S: error: w.safetensors: header must be a JSON object, not a list" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.metadata_not_strings() {
    st_raw w.safetensors 32 '{"__metadata__": {"format": 1}} ' 0
    check 1 "$S: error: w.safetensors: \"__metadata__\": the value of \"format\" must be a string, not a number" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# weights: one tensor entry

# st_one JSON_ENTRY DATA_BYTES: a file holding one entry "a", written to w.safetensors.
st_one() {
    local hdr
    hdr=$(st_header "{\"a\": $1}")
    st_raw w.safetensors "${#hdr}" "$hdr" "$2"
}

badinput.weights.entry_not_object() {
    st_one '[1, 2]' 0
    check 1 "$S: error: w.safetensors: tensor 'a': entry must be an object with dtype, shape and data_offsets, not a list" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.unknown_field() {
    st_one '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "offset": 0}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': unknown field \"offset\" (the fields are dtype, shape and data_offsets)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.missing_field() {
    st_one '{"dtype": "F32", "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': missing field \"shape\"" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.field_twice() {
    st_one '{"dtype": "F32", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': field \"dtype\" appears twice" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.dtype_not_string() {
    st_one '{"dtype": 4, "shape": [1], "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': \"dtype\" must be a string, not a number" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.unknown_dtype() {
    st_one '{"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}' 16
    check 1 "$S: error: w.safetensors: tensor 'a': unknown dtype \"F128\" (known: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.shape_negative() {
    st_one '{"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': shape entry 1 is not a whole number in [0, 2^53)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.shape_fraction() {
    st_one '{"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': shape entry 0 is not a whole number in [0, 2^53)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.rank_over_limit() {
    st_one '{"dtype": "F32", "shape": [1, 1, 1, 1, 1, 1, 1], "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': rank 7 is above the limit of 6" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# numel x element size overflows 64 bits.
badinput.weights.shape_overflow() {
    st_one '{"dtype": "F32", "shape": [4503599627370496, 4503599627370496], "data_offsets": [0, 4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': shape [4503599627370496, 4503599627370496] is too large" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.offsets_malformed() {
    st_one '{"dtype": "F32", "shape": [1], "data_offsets": [4]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': \"data_offsets\" must be a list of two whole numbers [begin, end]" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.offsets_negative() {
    st_one '{"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}' 4
    check 1 "$S: error: w.safetensors: tensor 'a': \"data_offsets\" must be a list of two whole numbers [begin, end]" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.offsets_reversed() {
    st_one '{"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}' 8
    check 1 "$S: error: w.safetensors: tensor 'a': data_offsets [8, 4] are reversed (begin > end)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.offsets_out_of_range() {
    st_one '{"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}' 8
    check 1 "$S: error: w.safetensors: tensor 'a': data_offsets [0, 16] run past the end of the data buffer (8 bytes); the file may be truncated" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# Offsets near 2^53 must not wrap when compared with the buffer.
badinput.weights.offsets_huge() {
    st_one '{"dtype": "F32", "shape": [1], "data_offsets": [9007199254740988, 9007199254740991]}' 8
    check 1 "$S: error: w.safetensors: tensor 'a': data_offsets [9007199254740988, 9007199254740991] run past the end of the data buffer (8 bytes)" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.size_mismatch() {
    st_one '{"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}' 24
    check 1 "$S: error: w.safetensors: tensor 'a': shape [2, 3] of F32 needs 24 bytes, but data_offsets [0, 20] hold 20" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# weights: the layout of the data buffer

badinput.weights.offsets_overlap() {
    local hdr
    hdr=$(st_header '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}')
    st_raw w.safetensors "${#hdr}" "$hdr" 12
    check 1 "$S: error: w.safetensors: tensors 'a' [0, 8] and 'b' [4, 12] overlap in the data buffer" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# One tensor's range inside another's.
badinput.weights.offsets_nested() {
    local hdr
    hdr=$(st_header '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}')
    st_raw w.safetensors "${#hdr}" "$hdr" 16
    check 1 "$S: error: w.safetensors: tensors 'a' [0, 16] and 'b' [4, 8] overlap in the data buffer" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.name_twice() {
    local hdr
    hdr=$(st_header '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}')
    st_raw w.safetensors "${#hdr}" "$hdr" 8
    check 1 "$S: error: w.safetensors: tensor 'a' appears twice in the header" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# Control: the header lists the tensors in another order than their data (JSON objects are
# unordered; Hugging Face writers order the data by dtype and name).  Valid: status 0.
badinput.weights.offsets_out_of_order() {
    st -r w.safetensors "${SEED_WEIGHTS[@]}"
    check 0 "" "$SEED" --weights w.safetensors "${SEED_IN[@]}" --output output=o.npy
    expect_file o.npy
}

# Control: a header length that is not a multiple of 4 leaves every tensor misaligned in
# the mapping; the runtime copies them into aligned memory.  Valid: status 0.
badinput.weights.misaligned() {
    st -m w.safetensors "${SEED_WEIGHTS[@]}"
    check 0 "" "$SEED" --weights w.safetensors "${SEED_IN[@]}" --output output=o.npy
    expect_file o.npy
}

# ---------------------------------------------------------------------------------------
# weights: binding to the model

# The file has no tensor by the wanted name; the message lists the closest names.
badinput.weights.tensor_missing() {
    st w.safetensors "${SEED_WEIGHTS[@]/norm1.weight/norm_1.weight}"
    check 1 "$S: error: weight 'norm1.weight' is not in w.safetensors; closest names: norm2.weight, norm_1.weight, ffn.0.weight" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# With weight prefixes the message names every form tried.
badinput.weights.tensor_missing_prefixed() {
    local ws=()
    for w in "${GPT2_WEIGHTS[@]}"; do
        [ "${w%%:*}" = h.0.ln_2.weight ] || ws+=("transformer.$w")
    done
    st w.safetensors "${ws[@]}"
    check 1 "gpt2: error: weight 'h.0.ln_2.weight' is not in w.safetensors (also tried 'transformer.h.0.ln_2.weight'); closest names: transformer.h.0.ln_1.weight, transformer.h.0.ln_2.bias, transformer.ln_f.weight" \
        "$GPT2" --weights w.safetensors "${GPT2_IN[@]}" "${GPT2_OUT[@]}"
}

badinput.weights.no_tensors() {
    st_raw w.safetensors 8 '{}      ' 0
    check 1 "$S: error: weight 'self_attention.in_proj_weight' is not in w.safetensors; the file has no tensors" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# Stored transposed: same bytes, other shape.
badinput.weights.tensor_misshaped() {
    st w.safetensors "${SEED_WEIGHTS[@]/ffn.0.weight:F32:16,8/ffn.0.weight:F32:8,16}"
    check 1 "$S: error: weight 'ffn.0.weight': shape in the file is [8, 16], the spec wants [16, 8]" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.tensor_wrong_rank() {
    st w.safetensors "${SEED_WEIGHTS[@]/norm1.bias:F32:8/norm1.bias:F32:1,8}"
    check 1 "$S: error: weight 'norm1.bias': shape in the file is [1, 8], the spec wants [8]" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# A tensor found under a prefix is named both ways.
badinput.weights.tensor_misshaped_prefixed() {
    local ws=()
    for w in "${GPT2_WEIGHTS[@]/wpe.weight:F32:4,8/wpe.weight:F32:8,8}"; do
        ws+=("transformer.$w")
    done
    st w.safetensors "${ws[@]}"
    check 1 "gpt2: error: weight 'wpe.weight' (found as 'transformer.wpe.weight'): shape in the file is [8, 8], the spec wants [4, 8]" \
        "$GPT2" --weights w.safetensors "${GPT2_IN[@]}" "${GPT2_OUT[@]}"
}

badinput.weights.tensor_bf16() {
    st w.safetensors "${SEED_WEIGHTS[@]/norm2.weight:F32/norm2.weight:BF16}"
    check 1 "$S: error: weight 'norm2.weight': dtype is BF16 in the file, the spec wants f32" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.tensor_f16() {
    st w.safetensors "${SEED_WEIGHTS[@]/self_attention.in_proj_weight:F32/self_attention.in_proj_weight:F16}"
    check 1 "$S: error: weight 'self_attention.in_proj_weight': dtype is F16 in the file, the spec wants f32" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.weights.tensor_i64() {
    st w.safetensors "${SEED_WEIGHTS[@]/ffn.2.bias:F32/ffn.2.bias:I64}"
    check 1 "$S: error: weight 'ffn.2.bias': dtype is I64 in the file, the spec wants f32" \
        "$SEED" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# Control: tensors the model does not use may have any dtype; names may carry a prefix the
# spec lists.  Valid: status 0.
badinput.weights.unused_and_prefixed() {
    local ws=(lm_head.weight:BF16:16,8 extra.scale:F8_E4M3:3)
    for w in "${GPT2_WEIGHTS[@]}"; do ws+=("transformer.$w"); done
    st w.safetensors "${ws[@]}"
    check 0 "" "$GPT2" --weights w.safetensors "${GPT2_IN[@]}" --output logits=o.npy
    expect_file o.npy
}

# ---------------------------------------------------------------------------------------
# inputs: the .npy file

badinput.inputs.nonexistent() {
    check 1 "$S: error: input 'hidden_states': x.npy: cannot open: No such file or directory" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.directory() {
    mkdir x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: is a directory, not a .npy file" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.fifo() {
    mkfifo x.npy
    local TIMEOUT=10
    check 1 "$S: error: input 'hidden_states': x.npy: is a FIFO (named pipe), not a .npy file" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.empty_file() {
    : >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: not a .npy file (it does not start with \\x93NUMPY)" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.not_npy() {
    printf 'hidden_states = [1, 2, 3]\n' >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: not a .npy file (it does not start with \\x93NUMPY)" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.version_4() {
    { printf '\x93NUMPY\x04\x00'; tail -c +9 "$FIX/seed.hidden_states.npy"; } >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: unsupported .npy version 4.0 (kiln reads 1.0, 2.0, 3.0)" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.truncated_in_header() {
    head -c 40 "$FIX/seed.hidden_states.npy" >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: header is truncated: its length is 118 bytes but the file has 30 after the preamble" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.truncated_in_data() {
    head -c -4 "$FIX/seed.hidden_states.npy" >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: data is truncated: shape (1, 3, 8) of '<f4' needs 96 bytes, the file has 92" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.trailing_data() {
    { cat "$FIX/seed.hidden_states.npy"; zeros 4; } >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: file has 4 bytes of trailing data after the 96 bytes of shape (1, 3, 8) of '<f4'" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.header_malformed() {
    local dict="{'descr': '<f4' 'fortran_order': False, 'shape': (1, 3, 8), }"
    { printf '\x93NUMPY\x01\x00'; le 2 $((${#dict} + 1)); printf '%s\n' "$dict"; zeros 96; } >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: header: expected ',' or '}' at byte 16 of the header dict" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.header_missing_key() {
    local dict="{'descr': '<f4', 'fortran_order': False}"
    { printf '\x93NUMPY\x01\x00'; le 2 $((${#dict} + 1)); printf '%s\n' "$dict"; zeros 4; } >x.npy
    check 1 "$S: error: input 'hidden_states': x.npy: header: missing key 'shape'" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.fortran_order() {
    zeros 96 | npy x.npy '<f4' '(1, 3, 8)' True
    check 1 "$S: error: input 'hidden_states': x.npy: array is in Fortran order; kiln reads C order (save np.ascontiguousarray(a))" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.rank_over_limit() {
    zeros 4 | npy x.npy '<f4' '(1, 1, 1, 1, 1, 1, 1)'
    check 1 "$S: error: input 'hidden_states': x.npy: header: shape has more dims than the runtime's limit of KILN_RT_MAX_RANK (6)" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

# numel x 4 overflows: the size check must not wrap around to a small number.
badinput.inputs.shape_overflow() {
    zeros 4 | npy x.npy '<f4' '(4611686018427387904, 4)'
    check 1 "$S: error: input 'hidden_states': x.npy: shape (4611686018427387904, 4) is too large" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# inputs: dtype

badinput.inputs.f64() {
    f64_zeros 24 | npy x.npy '<f8' '(1, 3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy: dtype '<f8' is not supported (kiln reads '<f4', '<i4' and '<i8'; convert with a.astype(np.float32) or np.int32)" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.big_endian() {
    zeros 96 | npy x.npy '>f4' '(1, 3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy: dtype '>f4' is big-endian; kiln reads little-endian arrays" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.ints_for_floats() {
    zeros 96 | npy x.npy '<i4' '(1, 3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy holds i32 values, the model wants f32 ('<f4')" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.floats_for_ids() {
    f32 1 2 0 | npy ids.npy '<f4' '(1, 3)'
    check 1 "gpt2: error: input 'input_ids': ids.npy holds f32 values, the model wants i32 ('<i4' or '<i8')" \
        "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.inputs.i64_too_large() {
    i64 1 2147483648 3 | npy ids.npy '<i8' '(1, 3)'
    check 1 "gpt2: error: input 'input_ids': ids.npy has the value 2147483648 at flat index 1, which does not fit in i32" \
        "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.inputs.i64_too_small() {
    i64 1 2 -2147483649 | npy ids.npy '<i8' '(1, 3)'
    check 1 "gpt2: error: input 'input_ids': ids.npy has the value -2147483649 at flat index 2, which does not fit in i32" \
        "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

# Control: i64 ids (what np.array([[1, 2, 3]]) gives) are narrowed.  Valid: status 0.
badinput.inputs.i64_ids() {
    i64 1 2 3 | npy ids.npy '<i8' '(1, 3)'
    check 0 "" "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy --output logits=o.npy
    expect_file o.npy
}

# ---------------------------------------------------------------------------------------
# inputs: shape

badinput.inputs.wrong_rank() {
    zeros 96 | npy x.npy '<f4' '(3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy has rank 2 (shape [3, 8]), the model wants rank 3 [batch, seq, 8]" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.scalar() {
    zeros 4 | npy x.npy '<f4' '()'
    check 1 "$S: error: input 'hidden_states': x.npy has rank 0 (shape []), the model wants rank 3 [batch, seq, 8]" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.static_dim() {
    zeros 84 | npy x.npy '<f4' '(1, 3, 7)'
    check 1 "$S: error: input 'hidden_states': dim 2 is 7, the model wants 8 (shape [batch, seq, 8], the file has [1, 3, 7])" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.seq_over_bound() {
    zeros 160 | npy x.npy '<f4' '(1, 5, 8)'
    check 1 "$S: error: input 'hidden_states': dim 1 (seq) is 5, above its bound 4" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.batch_over_bound() {
    zeros 96 | npy x.npy '<f4' '(3, 1, 8)'
    check 1 "$S: error: input 'hidden_states': dim 0 (batch) is 3, above its bound 2" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.empty_batch() {
    npy x.npy '<f4' '(0, 3, 8)' </dev/null
    check 1 "$S: error: input 'hidden_states': dim 0 (batch) is 0; it must be at least 1" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.empty_seq() {
    npy ids.npy '<i4' '(1, 0)' </dev/null
    check 1 "gpt2: error: input 'input_ids': dim 1 (seq) is 0; it must be at least 1" \
        "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.inputs.empty_static_dim() {
    npy x.npy '<f4' '(1, 3, 0)' </dev/null
    check 1 "$S: error: input 'hidden_states': dim 2 is 0, the model wants 8 (shape [batch, seq, 8], the file has [1, 3, 0])" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

# Symbolic dims are bound by the first input that has them; later inputs must agree.
badinput.inputs.seq_inconsistent() {
    i32 0 0 1 1 | npy types.npy '<i4' '(2, 2)'
    check 1 "bert: error: input 'token_type_ids': dim 1 (seq) is 2 but input 'input_ids' set seq = 3" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" --input token_type_ids=types.npy "${BERT_MASK[@]}" "${BERT_OUT[@]}"
}

badinput.inputs.batch_inconsistent() {
    i32 1 1 1 | npy mask.npy '<i4' '(1, 3)'
    check 1 "bert: error: input 'attention_mask': dim 0 (batch) is 1 but input 'input_ids' set batch = 2" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" --input attention_mask=mask.npy "${BERT_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# inputs: values

badinput.inputs.nan() {
    { zeros 40; f32 nan; zeros 52; } | npy x.npy '<f4' '(1, 3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy has a non-finite value (nan) at flat index 10" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.inf() {
    { f32 inf; zeros 92; } | npy x.npy '<f4' '(1, 3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy has a non-finite value (inf) at flat index 0" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.inputs.negative_inf() {
    { zeros 92; f32 -inf; } | npy x.npy '<f4' '(1, 3, 8)'
    check 1 "$S: error: input 'hidden_states': x.npy has a non-finite value (-inf) at flat index 23" \
        "$SEED" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

# Token ids index the embedding table; one outside it stops forward() with a message.
badinput.inputs.id_too_large() {
    i32 1 16 2 | npy ids.npy '<i4' '(1, 3)'
    check 1 "gpt2: error: forward: gather 'tok_emb': id 16 at index 1 is outside [0, 16)" \
        "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.inputs.id_negative() {
    i32 -1 1 2 | npy ids.npy '<i4' '(1, 3)'
    check 1 "gpt2: error: forward: gather 'tok_emb': id -1 at index 0 is outside [0, 16)" \
        "$GPT2" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.inputs.token_type_too_large() {
    i32 0 0 1 0 1 2 | npy types.npy '<i4' '(2, 3)'
    check 1 "bert: error: forward: gather 'embeddings.types': id 2 at index 5 is outside [0, 2)" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" --input token_type_ids=types.npy "${BERT_MASK[@]}" "${BERT_OUT[@]}"
}

# BERT's attention_mask means 1 = token, 0 = padding; a 2 would make the additive mask
# +3.4e38 and the softmax overflow.  The spec declares range: [0, 1]; the binary refuses it.
badinput.inputs.mask_not_0_or_1() {
    i32 1 1 1 1 2 0 | npy mask.npy '<i4' '(2, 3)'
    check 1 "bert: error: input 'attention_mask': mask.npy has the value 2 at flat index 4, outside the spec's range [0, 1]" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" --input attention_mask=mask.npy "${BERT_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# inputs: on the command line (usage errors, status 2)

badinput.inputs.missing() {
    check 2 "bert: error: missing --input for: token_type_ids=FILE.npy, attention_mask=FILE.npy (run with --help for usage)" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_OUT[@]}"
}

badinput.inputs.unknown_name() {
    check 2 "$S: error: unknown input 'hidden'; the inputs are: hidden_states" \
        "$SEED" "${SEED_W[@]}" --input "hidden=$FIX/seed.hidden_states.npy" "${SEED_OUT[@]}"
}

badinput.inputs.given_twice() {
    check 2 "$S: error: input 'hidden_states' is given twice" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.inputs.no_equals() {
    check 2 "$S: error: --input wants NAME=FILE.npy, got 'hidden_states'" \
        "$SEED" "${SEED_W[@]}" --input hidden_states "${SEED_OUT[@]}"
}

badinput.inputs.no_file() {
    check 2 "$S: error: --input wants NAME=FILE.npy, got 'hidden_states='" \
        "$SEED" "${SEED_W[@]}" --input hidden_states= "${SEED_OUT[@]}"
}

# ---------------------------------------------------------------------------------------
# cli: the model binary's options

# A near miss of --weights.
badinput.cli.unknown_option() {
    check 2 "$S: error: unknown option '--weight' (run with --help for usage)" \
        "$SEED" --weight "$FIX/seed.safetensors" "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.cli.stray_argument() {
    check 2 "$S: error: unexpected argument 'extra.npy' (run with --help for usage)" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" extra.npy "${SEED_OUT[@]}"
}

badinput.cli.missing_value_at_end() {
    check 2 "$S: error: --weights needs a value" \
        "$SEED" "${SEED_IN[@]}" "${SEED_OUT[@]}" --weights
}

# A value that starts with -- is the next option, not a value.
badinput.cli.missing_value_before_option() {
    check 2 "$S: error: --weights needs a value" \
        "$SEED" --weights "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.cli.empty_value() {
    check 2 "$S: error: --weights needs a value" \
        "$SEED" --weights= "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.cli.no_weights() {
    check 2 "$S: error: missing --weights W.safetensors (run with --help for usage)" \
        "$SEED" "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.cli.weights_twice() {
    check 2 "$S: error: --weights is given twice" \
        "$SEED" "${SEED_W[@]}" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.cli.repeat_zero() {
    check 2 "$S: error: --repeat wants a whole number from 1 to 1000000, got '0'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --repeat 0
}

badinput.cli.repeat_not_a_number() {
    check 2 "$S: error: --repeat wants a whole number from 1 to 1000000, got 'x'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --repeat x
}

badinput.cli.repeat_negative() {
    check 2 "$S: error: --repeat wants a whole number from 1 to 1000000, got '-3'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --repeat -3
}

badinput.cli.repeat_too_large() {
    check 2 "$S: error: --repeat wants a whole number from 1 to 1000000, got '99999999999999999999'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --repeat=99999999999999999999
}

badinput.cli.repeat_trailing_text() {
    check 2 "$S: error: --repeat wants a whole number from 1 to 1000000, got '5x'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --repeat 5x
}

badinput.cli.repeat_twice() {
    check 2 "$S: error: --repeat is given twice" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --repeat 2 --repeat 3
}

badinput.cli.warmup_negative() {
    check 2 "$S: error: --warmup wants a whole number from 0 to 1000000, got '-1'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --warmup -1
}

badinput.cli.warmup_twice() {
    check 2 "$S: error: --warmup is given twice" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --warmup 1 --warmup=2
}

badinput.cli.threads_zero() {
    check 2 "$S: error: --threads wants a whole number from 1 to 256, got '0'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --threads 0
}

badinput.cli.threads_not_a_number() {
    check 2 "$S: error: --threads wants a whole number from 1 to 256, got 'all'" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" --threads=all
}

# ---------------------------------------------------------------------------------------
# cli: outputs

badinput.cli.unknown_output() {
    check 2 "gpt2: error: unknown output 'logit'; the outputs are: logits" \
        "$GPT2" "${GPT2_W[@]}" "${GPT2_IN[@]}" --output logit=out/logits.npy
}

badinput.cli.output_no_equals() {
    check 2 "gpt2: error: --output wants NAME=FILE.npy, got 'logits'" \
        "$GPT2" "${GPT2_W[@]}" "${GPT2_IN[@]}" --output logits
}

badinput.cli.output_twice() {
    check 2 "gpt2: error: output 'logits' is given twice" \
        "$GPT2" "${GPT2_W[@]}" "${GPT2_IN[@]}" "${GPT2_OUT[@]}" --output logits=out/b.npy
}

badinput.cli.outputs_same_path() {
    check 2 "bert: error: outputs 'last_hidden_state' and 'pooler_output' are both written to 'out/x.npy'" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_MASK[@]}" \
        --output last_hidden_state=out/x.npy --output pooler_output=out/x.npy
}

badinput.cli.output_dir_missing() {
    check 1 "$S: error: output 'output': out/sub/o.npy: cannot create a temporary file in its directory: No such file or directory" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" --output output=out/sub/o.npy
}

badinput.cli.output_is_directory() {
    mkdir out/o.npy
    check 1 "$S: error: output 'output': out/o.npy: is a directory" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" --output output=out/o.npy
}

badinput.cli.output_dir_unwritable() {
    if [ "$(id -u)" -eq 0 ]; then
        skip "running as root, which writes into a folder whatever its permissions"
        return
    fi
    chmod 555 out
    check 1 "$S: error: output 'output': out/o.npy: cannot create a temporary file in its directory: Permission denied" \
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" --output output=out/o.npy
    chmod 755 out
}

# All or nothing: when the second output cannot be written, the first is not written either.
badinput.cli.outputs_all_or_nothing() {
    check 1 "bert: error: output 'pooler_output': out/sub/p.npy: cannot create a temporary file in its directory: No such file or directory" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_MASK[@]}" \
        --output last_hidden_state=out/h.npy --output pooler_output=out/sub/p.npy
}

# Also when the destination of the second is a directory.
badinput.cli.outputs_all_or_nothing_directory() {
    mkdir out/p.npy
    check 1 "bert: error: output 'pooler_output': out/p.npy: is a directory" \
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_MASK[@]}" \
        --output last_hidden_state=out/h.npy --output pooler_output=out/p.npy
}

# ---------------------------------------------------------------------------------------
# kiln: the driver's command line

badinput.kiln.unknown_command() {
    check 2 "kiln: error: unknown command 'compile' (commands: build emit " \
        "$KILN" compile "${SEED_ARGS[@]}"
}

badinput.kiln.unknown_option() {
    check 2 "kiln: error: unknown option '--opt'" \
        "$KILN" emit "${SEED_ARGS[@]}" --opt -o out/m.c
}

badinput.kiln.define_without_equals() {
    check 2 "kiln: error: -D wants NAME=VALUE, found 'hidden_size'" \
        "$KILN" emit "${SEED_ARGS[@]}" -D hidden_size -o out/m.c
}

badinput.kiln.define_without_name() {
    check 2 "kiln: error: -D wants NAME=VALUE, found '=8'" \
        "$KILN" emit "${SEED_ARGS[@]}" -D=8 -o out/m.c
}

badinput.kiln.define_at_end() {
    check 2 "kiln: error: -D wants NAME=VALUE, found ''" \
        "$KILN" emit "${SEED_ARGS[@]}" -o out/m.c -D
}

badinput.kiln.define_unknown_parameter() {
    check 1 "error: -D hidden=8: unknown parameter 'hidden'" \
        "$KILN" emit "${SEED_ARGS[@]}" -D hidden=8 -o out/m.c
}

badinput.kiln.disable_unknown_pass() {
    check 2 "kiln: error: --disable-pass: no pass named 'fuse-everything' (passes: fold-constants " \
        "$KILN" emit "${SEED_ARGS[@]}" --disable-pass fuse-everything -o out/m.c
}

badinput.kiln.disable_required_pass() {
    check 2 "kiln: error: --disable-pass: pass 'plan-memory' is required" \
        "$KILN" build "${SEED_ARGS[@]}" --disable-pass=plan-memory -o out/m
}

badinput.kiln.disable_pass_without_name() {
    check 2 "kiln: error: --disable-pass needs a value" \
        "$KILN" emit "${SEED_ARGS[@]}" -o out/m.c --disable-pass
}

badinput.kiln.after_unknown_pass() {
    check 2 "kiln: error: --after: no pass named 'codegen' (use parse, all, or one of: fold-constants " \
        "$KILN" inspect "${SEED_ARGS[@]}" --after codegen
}

badinput.kiln.after_with_emit() {
    check 2 "kiln: error: --after/--dot/--svg belong to 'kiln inspect', not to 'emit'" \
        "$KILN" emit "${SEED_ARGS[@]}" --after parse -o out/m.c
}

badinput.kiln.weights_with_build() {
    check 2 "kiln: error: --weights/--input/--output belong to 'kiln interp' (and to the built binary), not to 'build'" \
        "$KILN" build "${SEED_ARGS[@]}" "${SEED_W[@]}" -o out/m
}

badinput.kiln.no_spec() {
    check 2 "kiln: error: emit needs a spec file" \
        "$KILN" emit -o out/m.c
}

badinput.kiln.two_specs() {
    check 2 "kiln: error: unexpected argument 'other.yaml' (one spec per command)" \
        "$KILN" emit "${SEED_ARGS[@]}" other.yaml -o out/m.c
}

badinput.kiln.spec_nonexistent() {
    check 1 "nope.yaml: error: cannot open the spec: No such file or directory" \
        "$KILN" emit nope.yaml -o out/m.c
}

badinput.kiln.spec_directory() {
    mkdir spec.yaml
    check 1 "spec.yaml: error: the spec is not a regular file (it is a directory)" \
        "$KILN" emit spec.yaml -o out/m.c
}

badinput.kiln.spec_fifo() {
    mkfifo spec.yaml
    local TIMEOUT=5
    check 1 "spec.yaml: error: the spec is not a regular file" \
        "$KILN" emit spec.yaml -o out/m.c
}

badinput.kiln.emit_dir_missing() {
    check 1 "kiln: error: cannot write 'out/sub/m.c': No such file or directory" \
        "$KILN" emit "${SEED_ARGS[@]}" -o out/sub/m.c
}

badinput.kiln.emit_to_directory() {
    mkdir out/m.c
    check 1 "kiln: error: cannot write 'out/m.c': Is a directory" \
        "$KILN" emit "${SEED_ARGS[@]}" -o out/m.c
}

badinput.kiln.build_dir_missing() {
    check 1 "kiln: error: cannot write 'out/sub/m': No such file or directory" \
        "$KILN" build "${SEED_ARGS[@]}" -o out/sub/m
}

# The C compiler runs, then the rename fails: the binary and the C file are both removed.
badinput.kiln.build_to_directory() {
    mkdir out/m
    check 1 "kiln: error: cannot write 'out/m': Is a directory" \
        "$KILN" build "${SEED_ARGS[@]}" -o out/m
}

badinput.kiln.build_emit_c_dir_missing() {
    check 1 "kiln: error: cannot write 'out/sub/m.c': No such file or directory" \
        "$KILN" build "${SEED_ARGS[@]}" -o out/m --emit-c out/sub/m.c
}

badinput.kiln.build_compiler_missing() {
    check 1 "kiln: error: cannot run 'no-such-cc': No such file or directory" \
        "$KILN" build "${SEED_ARGS[@]}" --cc no-such-cc -o out/m
}

# ---------------------------------------------------------------------------------------
# kiln interp: the same files through the reference interpreter

badinput.kiln.interp_no_weights() {
    check 2 "kiln: error: interp needs --weights FILE" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.kiln.interp_weights_truncated() {
    head -c -6 "$FIX/seed.safetensors" >w.safetensors
    check 1 "kiln: error: w.safetensors: tensor 'norm2.bias': data_offsets [2368, 2400] run past the end of the data buffer (2394 bytes); the file may be truncated" \
        "$KILN" interp "${SEED_ARGS[@]}" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.kiln.interp_tensor_missing() {
    st w.safetensors "${SEED_WEIGHTS[@]/norm1.weight/norm_1.weight}"
    check 1 "kiln: error: weight 'norm1.weight' is not in w.safetensors" \
        "$KILN" interp "${SEED_ARGS[@]}" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.kiln.interp_mask_out_of_range() {
    i32 1 1 1 0 -1 0 | npy mask.npy '<i4' '(2, 3)'
    check 1 "kiln: error: input 'attention_mask': mask.npy has the value -1 at flat index 4, outside the spec's range [0, 1]" \
        "$KILN" interp "${BERT_ARGS[@]}" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" --input attention_mask=mask.npy "${BERT_OUT[@]}"
}

badinput.kiln.interp_tensor_bf16() {
    st w.safetensors "${SEED_WEIGHTS[@]/norm2.weight:F32/norm2.weight:BF16}"
    check 1 "kiln: error: weight 'norm2.weight': dtype is BF16 in the file, the spec wants f32" \
        "$KILN" interp "${SEED_ARGS[@]}" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.kiln.interp_tensor_misshaped() {
    st w.safetensors "${SEED_WEIGHTS[@]/ffn.0.weight:F32:16,8/ffn.0.weight:F32:8,16}"
    check 1 "kiln: error: weight 'ffn.0.weight': shape in the file is [8, 16], the spec wants [16, 8]" \
        "$KILN" interp "${SEED_ARGS[@]}" --weights w.safetensors "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

# Control: as the binary, the interpreter copies misaligned tensors.  Valid: status 0.
badinput.kiln.interp_misaligned() {
    st -m w.safetensors "${SEED_WEIGHTS[@]}"
    check 0 "" "$KILN" interp "${SEED_ARGS[@]}" --weights w.safetensors "${SEED_IN[@]}" \
        --output output=o.npy
    expect_file o.npy
}

badinput.kiln.interp_seq_over_bound() {
    zeros 160 | npy x.npy '<f4' '(1, 5, 8)'
    check 1 "input 'hidden_states': dim 1 (seq) is 5, expected 1 to 4" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.kiln.interp_input_f64() {
    f64_zeros 24 | npy x.npy '<f8' '(1, 3, 8)'
    check 1 "kiln: error: x.npy: dtype '<f8' is not supported" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.kiln.interp_input_nan() {
    { zeros 40; f32 nan; zeros 52; } | npy x.npy '<f4' '(1, 3, 8)'
    check 1 "kiln: error: input 'hidden_states': x.npy has a non-finite value (nan) at flat index 10" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_W[@]}" --input hidden_states=x.npy "${SEED_OUT[@]}"
}

badinput.kiln.interp_floats_for_ids() {
    f32 1 2 0 | npy ids.npy '<f4' '(1, 3)'
    check 1 "kiln: error: input 'input_ids' is f32 in ids.npy, the spec wants i32" \
        "$KILN" interp "${GPT2_ARGS[@]}" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.kiln.interp_i64_too_large() {
    i64 1 2147483648 3 | npy ids.npy '<i8' '(1, 3)'
    check 1 "kiln: error: input 'input_ids': value 2147483648 at index 1 does not fit int32" \
        "$KILN" interp "${GPT2_ARGS[@]}" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

badinput.kiln.interp_seq_inconsistent() {
    i32 0 0 1 1 | npy types.npy '<i4' '(2, 2)'
    check 1 "error: input 'token_type_ids': dim 1 (seq) is 2, expected 3 as in input 'input_ids' ([batch, seq])" \
        "$KILN" interp "${BERT_ARGS[@]}" "${BERT_W[@]}" "${BERT_IDS[@]}" --input token_type_ids=types.npy "${BERT_MASK[@]}" "${BERT_OUT[@]}"
}

badinput.kiln.interp_missing_input() {
    check 2 "kiln: error: missing --input attention_mask=FILE.npy" \
        "$KILN" interp "${BERT_ARGS[@]}" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_OUT[@]}"
}

badinput.kiln.interp_unknown_input() {
    check 2 "kiln: error: the model has no input 'hidden'" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_W[@]}" --input "hidden=$FIX/seed.hidden_states.npy" "${SEED_OUT[@]}"
}

badinput.kiln.interp_input_twice() {
    check 2 "kiln: error: input 'hidden_states' given twice" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}"
}

badinput.kiln.interp_unknown_output() {
    check 2 "kiln: error: --output 'out=out/o.npy' names no model output" \
        "$KILN" interp "${SEED_ARGS[@]}" "${SEED_W[@]}" "${SEED_IN[@]}" --output out=out/o.npy
}

badinput.kiln.interp_id_too_large() {
    i32 1 16 2 | npy ids.npy '<i4' '(1, 3)'
    check 1 "gather 'tok_emb': id 16 at index 1 is outside [0, 16)" \
        "$KILN" interp "${GPT2_ARGS[@]}" "${GPT2_W[@]}" --input input_ids=ids.npy "${GPT2_OUT[@]}"
}

# All or nothing, as in the binary: the first output is not left behind.
badinput.kiln.interp_outputs_all_or_nothing() {
    check 1 "kiln: error: output 'pooler_output': out/sub/p.npy: cannot create a temporary file in its directory: No such file or directory" \
        "$KILN" interp "${BERT_ARGS[@]}" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_MASK[@]}" \
        --output last_hidden_state=out/h.npy --output pooler_output=out/sub/p.npy
}

badinput.kiln.interp_output_is_directory() {
    mkdir out/p.npy
    check 1 "kiln: error: output 'pooler_output': out/p.npy: is a directory" \
        "$KILN" interp "${BERT_ARGS[@]}" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_MASK[@]}" \
        --output last_hidden_state=out/h.npy --output pooler_output=out/p.npy
}

# ---------------------------------------------------------------------------------------
# diff: kiln diff A.npy B.npy

badinput.diff.missing_file() {
    check 2 "kiln diff: error: nope.npy: cannot open: No such file or directory" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" nope.npy
}

badinput.diff.not_npy() {
    printf 'not an array\n' >b.npy
    check 2 "kiln diff: error: b.npy: not a .npy file (it does not start with \\x93NUMPY)" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" b.npy
}

badinput.diff.fifo() {
    mkfifo b.npy
    local TIMEOUT=10
    check 2 "kiln diff: error: b.npy: is a FIFO (named pipe), not a .npy file" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" b.npy
}

# A mismatch is a result, not an error: it goes to stdout, status 1.
badinput.diff.shape_mismatch() {
    cp "$FIX/seed.hidden_states.npy" a.npy
    zeros 96 | npy b.npy '<f4' '(3, 8)'
    check_stdout 1 "shapes differ: a.npy is [1, 3, 8], b.npy is [3, 8]" \
        "$KILN" diff a.npy b.npy
}

badinput.diff.tolerance_not_a_number() {
    check 2 "kiln diff: error: --rtol wants a non-negative number" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy" --rtol abc
}

badinput.diff.tolerance_negative() {
    check 2 "kiln diff: error: --atol wants a non-negative number" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy" --atol -1
}

badinput.diff.tolerance_nan() {
    check 2 "kiln diff: error: --atol-scale wants a non-negative number" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy" --atol-scale nan
}

badinput.diff.tolerance_missing() {
    check 2 "kiln diff: error: --rtol wants a non-negative number" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy" --rtol
}

badinput.diff.unknown_option() {
    check 2 "kiln diff: error: unknown option '--tol'" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy" --tol 1e-3
}

badinput.diff.one_file() {
    check 2 "kiln diff: error: needs two .npy files" \
        "$KILN" diff "$FIX/seed.hidden_states.npy"
}

badinput.diff.three_files() {
    check 2 "kiln diff: error: more than two files" \
        "$KILN" diff "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy" "$FIX/seed.hidden_states.npy"
}
