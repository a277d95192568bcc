/* tests/fuzz/fuzz_npy.c: the .npy reader (runtime/npy.c) on arbitrary bytes.
 *
 * Input: the bytes of a .npy file, parsed in memory with kiln_npy_parse (kiln_npy_read runs
 * the same parser on a file's bytes).  An array that parses is checked against its header
 * (rank, dims, dtype) and every byte of its data is read, then it is written back with
 * kiln_npy_write and parsed again: the round trip must give the same dtype, shape and bytes.
 * A parse error is the expected outcome for most inputs.
 *
 * Seeds: corpus/npy/ (numpy's own files from tests/unit/data, and hand-made edge cases).
 */
#include "kiln_rt.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out_path[512];
static volatile unsigned char sink;   // every byte of the data is read into it

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_tmpdir("npy");
    fuzz_path(out_path, sizeof out_path, "out.npy");
    return 0;
}

static size_t nbytes(const kiln_npy *a)
{
    size_t n = kiln_dtype_size(a->dtype);
    for (int k = 0; k < a->rank; k++)
        n *= (size_t)a->dims[k];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!out_path[0])
        LLVMFuzzerInitialize(NULL, NULL);
    char err[512] = "";
    kiln_npy a;
    if (kiln_npy_parse(data, size, &a, err, sizeof err) != 0) {
        if (!err[0] || a.data || a.rank)
            abort();    // a failure leaves a message and an empty array
        return 0;
    }
    if (a.rank < 0 || a.rank > KILN_RT_MAX_RANK || kiln_dtype_size(a.dtype) == 0 || !a.data)
        abort();
    for (int k = 0; k < a.rank; k++)
        if (a.dims[k] < 0)
            abort();
    size_t n = nbytes(&a);
    if (n > size)
        abort();    // the data comes from the file, so it cannot be larger than the file

    for (size_t i = 0; i < n; i++)
        sink ^= ((const unsigned char *)a.data)[i];

    if (kiln_npy_write(out_path, a.dtype, a.rank, a.dims, a.data, err, sizeof err) != 0)
        abort();
    kiln_npy b;
    if (kiln_npy_read(out_path, &b, err, sizeof err) != 0 || b.dtype != a.dtype ||
        b.rank != a.rank || memcmp(b.dims, a.dims, (size_t)a.rank * sizeof a.dims[0]) != 0 ||
        memcmp(b.data, a.data, n) != 0)
        abort();
    kiln_npy_free(&b);
    kiln_npy_free(&a);
    return 0;
}
