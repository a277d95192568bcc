/* tests/fuzz/replay.c: run a fuzz harness over saved inputs, without libFuzzer.
 *
 * Linked with one tests/fuzz/fuzz_<name>.c into fuzz_<name>_replay, which ctest runs (label
 * `fuzz`) on corpus/<name>/ and crashes/<name>/: every seed and every input that once crashed
 * a parser goes through LLVMFuzzerTestOneInput again on each `make test`, under the
 * sanitizers with `make test-sanitize`.  A crash aborts the run and fails the test.
 *
 *   fuzz_<name>_replay [-v] PATH...     PATH: a file, or a folder whose files are run in
 *                                       name order (a missing folder is skipped: git keeps
 *                                       no empty crashes/<name>/)
 *
 * Each input is copied into a buffer of exactly its size, as libFuzzer does, so AddressSanitizer
 * catches a read one byte past it.  A harness whose fixed data is absent (the tokenizer
 * vocabularies in ../shared/data) sets fuzz_skip_reason in LLVMFuzzerInitialize; the run then
 * exits 77, which ctest reports as skipped.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
extern const char *fuzz_skip_reason __attribute__((weak));

static int n_run;
static int verbose;

// Run one file through the harness.  Returns 0, or 1 if it cannot be read.
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return 1;
    }
    uint8_t *exact = malloc(n ? n : 1);     // exactly n bytes: overreads are caught
    memcpy(exact, buf, n);
    free(buf);
    if (verbose)
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    n_run++;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

// Run every regular file of a folder, in name order (dot files are skipped).
static int run_dir(const char *dir)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", dir);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (ents[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            bad |= run_file(path);
        free(ents[i]);
    }
    free(ents);
    return bad;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    if (&fuzz_skip_reason && fuzz_skip_reason) {
        printf("SKIP: %s\n", fuzz_skip_reason);
        return 77;
    }
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if (stat(argv[i], &st) != 0)
            continue;       // e.g. crashes/<name>/ before anything was found
        else if (S_ISDIR(st.st_mode))
            bad |= run_dir(argv[i]);
        else
            bad |= run_file(argv[i]);
    }
    printf("replay: %d inputs, no crash\n", n_run);
    return bad;
}
