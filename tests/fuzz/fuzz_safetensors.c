/* tests/fuzz/fuzz_safetensors.c: the safetensors reader (runtime/safetensors.c) on arbitrary
 * bytes, and the binding of a small fixed model's weights to what it finds.
 *
 * Input: the bytes of a safetensors file.  kiln_st_parse validates it in memory (the same
 * checks kiln_st_open makes on a mapped file); a file that passes is looked up by every
 * tensor name it holds, every byte of every tensor is read (libFuzzer's input buffer is
 * exactly the file, so a range the parser let past the end is an AddressSanitizer report),
 * and then each weight of the model below is bound on its own (one missing weight must not
 * hide the checks of the others), with the prefixes "transformer." and "model." tried.
 *
 * Checked beyond the sanitizers (abort = finding): tensors lie inside the buffer, have
 * nbytes = numel x dtype size, are found by name; a bound weight has the declared dtype and
 * shape and an aligned pointer.
 *
 * Seeds: corpus/safetensors/ (tiny valid files, and broken ones: see make_seeds.py).
 */
#include "kiln_rt.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// The model's weights: "wte" [4, 2] f32, "ln.bias" [2] f32, "pos" [3] i32, "step" [] i64,
// "empty" [0, 3] f32 (a zero-size tensor is legal).
static const kiln_tensor_desc weights[] = {
    {"wte", KILN_F32, 2, {4, 2}, {-1, -1, -1, -1, -1, -1}},
    {"ln.bias", KILN_F32, 1, {2}, {-1, -1, -1, -1, -1, -1}},
    {"pos", KILN_I32, 1, {3}, {-1, -1, -1, -1, -1, -1}},
    {"step", KILN_I64, 0, {0}, {-1, -1, -1, -1, -1, -1}},
    {"empty", KILN_F32, 2, {0, 3}, {-1, -1, -1, -1, -1, -1}},
};
static const char *const prefixes[] = {"transformer.", "model."};
enum { N_WEIGHTS = sizeof weights / sizeof weights[0] };

static volatile unsigned char sink;   // every byte of the data is read into it

static int forward(kiln_run *r)
{
    (void)r;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";
    kiln_safetensors st;
    if (kiln_st_parse(&st, data, size, err, sizeof err) != 0) {
        if (!err[0] || st.n_tensors || st.tensors)
            abort();    // a failure leaves a message and an empty st
        return 0;
    }


    for (int i = 0; i < st.n_tensors; i++) {
        const kiln_st_tensor *t = &st.tensors[i];
        const uint8_t *p = t->data;
        if (!t->name || t->rank < 0 || t->rank > KILN_RT_MAX_RANK || !t->dtype_str)
            abort();
        if (t->nbytes && (p < data || p + t->nbytes > data + size))
            abort();
        for (size_t b = 0; b < t->nbytes; b++)
            sink ^= p[b];
        if (kiln_st_find(&st, t->name) != t)
            abort();
    }
    (void)kiln_st_find(&st, "transformer.wte");

    for (int i = 0; i < N_WEIGHTS; i++) {
        kiln_model m = {
            .name = "fuzz",
            .n_weights = 1,
            .weights = &weights[i],
            .n_weight_prefixes = 2,
            .weight_prefixes = prefixes,
            .forward = forward,
        };
        const void *w = NULL;
        if (kiln_bind_weights(&m, &st, &w, err, sizeof err) != 0)
            continue;
        size_t n = kiln_dtype_size(weights[i].dtype);
        for (int k = 0; k < weights[i].rank; k++)
            n *= (size_t)weights[i].dims[k];
        if (!w || (uintptr_t)w % kiln_dtype_size(weights[i].dtype))
            abort();
        for (size_t b = 0; b < n; b++)
            sink ^= ((const uint8_t *)w)[b];
    }
    kiln_st_close(&st);
    return 0;
}
