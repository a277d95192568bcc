/* tests/fuzz/fuzz_model_inputs.c: a generated model binary's handling of its inputs.
 *
 * The build compiles tests/fuzz/model_inputs.yaml with `kiln emit` into fuzz_model.c, which
 * this file includes with KILN_NO_MAIN, so the harness is the model binary minus its main():
 * each input runs kiln_main() in-process, exactly as `./fuzz_model --weights W --input
 * input_ids=ids.npy --input mask=mask.npy --output logits=out.npy` would.  The weights are
 * fixed (written once, misaligned on purpose so the runtime copies them to the heap, where
 * AddressSanitizer guards them); the inputs are fuzzed:
 *
 *   IDS_NPY "\n@@mask@@\n" MASK_NPY    both files as given
 *   IDS_NPY                            the mask is made valid for the ids' shape (all ones,
 *                                      or [1, 1] when the ids do not parse), so the bytes
 *                                      reach the gather's id check
 *
 * The model: input_ids i32 [batch, seq], mask f32 [batch, seq] (batch <= 2, seq <= 8), a
 * [16, 16] embedding gathered by the ids, a layer norm and a tied head.
 *
 * Checked beyond the sanitizers (abort = finding): when kiln_main succeeds, every id was in
 * [0, 16), fit i32, and every mask value was finite; a status other than 0 or 1 (usage
 * errors cannot happen with this command line) is a finding too.
 */
#define _GNU_SOURCE     // memmem
#define KILN_NO_MAIN
#include "fuzz_model.c"
#include "fuzz_util.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { VOCAB = 16, D = 16 };
static const char sep[] = "\n@@mask@@\n";
static char weights_path[512], ids_path[512], mask_path[512], out_path[512];

// Write the weights: header length 2 (mod 4), so every tensor is misaligned in the mapping.
static void write_weights(void)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],"
                     "\"data_offsets\":[0,%d]},"
                     "\"ln.weight\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%d,%d]},"
                     "\"ln.bias\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%d,%d]}}",
                     VOCAB, D, VOCAB * D * 4, D, VOCAB * D * 4, (VOCAB * D + D) * 4, D,
                     (VOCAB * D + D) * 4, (VOCAB * D + 2 * D) * 4);
    while (n % 4 != 2)
        hdr[n++] = ' ';
    size_t n_data = (size_t)(VOCAB * D + 2 * D);
    size_t total = 8 + (size_t)n + 4 * n_data;
    unsigned char *buf = calloc(1, total);
    if (!buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)n);
    float *w = malloc(4 * n_data);
    for (size_t i = 0; i < n_data; i++)
        w[i] = i < VOCAB * D ? (float)((int)(i * 7 % 13) - 6) * 0.125f
                             : i < VOCAB * D + D ? 1.0f : 0.0f;
    memcpy(buf + 8 + n, w, 4 * n_data);
    fuzz_write(weights_path, buf, total);
    free(w);
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_tmpdir("model_inputs");
    fuzz_path(weights_path, sizeof weights_path, "weights.safetensors");
    fuzz_path(ids_path, sizeof ids_path, "ids.npy");
    fuzz_path(mask_path, sizeof mask_path, "mask.npy");
    fuzz_path(out_path, sizeof out_path, "logits.npy");
    write_weights();
    return 0;
}

// A valid mask file for ids of shape dims[0..rank): all ones, or [1, 1] when the shape
// cannot be a mask's.
static void write_mask(int rank, const int64_t *dims)
{
    int64_t shape[2] = {1, 1};
    if (rank == 2 && dims[0] >= 1 && dims[0] <= 64 && dims[1] >= 1 && dims[1] <= 64) {
        shape[0] = dims[0];
        shape[1] = dims[1];
    }
    size_t n = (size_t)(shape[0] * shape[1]);
    float *ones = malloc(n * sizeof *ones);
    for (size_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    char err[256];
    if (kiln_npy_write(mask_path, KILN_F32, 2, shape, ones, err, sizeof err) != 0)
        abort();
    free(ones);
}

// Whether the array a would be accepted as values by a correct runtime: ids that fit i32 and
// lie in [0, VOCAB); mask values finite.
static bool values_ok(const kiln_npy *a, bool is_ids)
{
    size_t n = 1;
    for (int k = 0; k < a->rank; k++)
        n *= (size_t)a->dims[k];
    for (size_t i = 0; i < n; i++) {
        if (is_ids && a->dtype == KILN_I32) {
            int32_t v = ((const int32_t *)a->data)[i];
            if (v < 0 || v >= VOCAB)
                return false;
        } else if (is_ids && a->dtype == KILN_I64) {
            int64_t v = ((const int64_t *)a->data)[i];
            if (v < 0 || v >= VOCAB)
                return false;
        } else if (!is_ids && a->dtype == KILN_F32) {
            if (!isfinite(((const float *)a->data)[i]))
                return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!weights_path[0])
        LLVMFuzzerInitialize(NULL, NULL);
    const uint8_t *s = memmem(data, size, sep, sizeof sep - 1);
    size_t n_ids = s ? (size_t)(s - data) : size;
    fuzz_write(ids_path, data, n_ids);

    char err[512];
    kiln_npy ids, mask;
    bool ids_parse = kiln_npy_parse(data, n_ids, &ids, err, sizeof err) == 0;
    if (s) {
        const uint8_t *m = s + sizeof sep - 1;
        size_t n_mask = size - n_ids - (sizeof sep - 1);
        fuzz_write(mask_path, m, n_mask);
    } else {
        write_mask(ids_parse ? ids.rank : 0, ids.dims);
    }
    bool mask_parse = kiln_npy_read(mask_path, &mask, err, sizeof err) == 0;

    char in1[600], in2[600], out[600];
    snprintf(in1, sizeof in1, "input_ids=%s", ids_path);
    snprintf(in2, sizeof in2, "mask=%s", mask_path);
    snprintf(out, sizeof out, "logits=%s", out_path);
    char *argv[] = {"fuzz_model", "--weights", weights_path, "--input", in1, "--input", in2,
                    "--output", out, NULL};
    int status = kiln_main(9, argv, &model);
    if (status != 0 && status != 1)
        abort();
    if (status == 0 && (!ids_parse || !mask_parse || !values_ok(&ids, true) ||
                        !values_ok(&mask, false)))
        abort();    // the binary accepted an input it must reject
    if (ids_parse)
        kiln_npy_free(&ids);
    if (mask_parse)
        kiln_npy_free(&mask);
    return 0;
}
