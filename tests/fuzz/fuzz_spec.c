/* tests/fuzz/fuzz_spec.c: the whole compiler on an arbitrary spec file.
 *
 * Input: the bytes of a spec (YAML).  Leading lines of the form
 *
 *     #-D name=value
 *
 * (at most 4; a YAML comment, so the file is still the spec the compiler reads) are also
 * passed as `-D name=value` overrides.  The bytes go to a file in a private temporary folder
 * and through spec_load (libyaml, the tree builder, expressions, node constructors and shape
 * inference); a graph that loads runs the whole pass pipeline (verified after every pass)
 * and cg_emit_model into /dev/null.  Diagnostics, source lines and carets included, go to
 * /dev/null too.  A spec error is the expected outcome for most inputs; a crash, a sanitizer
 * report, a KILN_BUG abort or a hang is a finding.
 *
 * Seeds: corpus/spec/ (the .yaml files of models/, tests/errors/ and tests/golden/, small
 * hand-written cases).
 */
#include "front.h"
#include "cg.h"
#include "fuzz_util.h"

enum { MAX_DEFS = 4, MAX_DEF_LEN = 128 };

static FILE *devnull;
static char spec_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_tmpdir("spec");
    fuzz_path(spec_path, sizeof spec_path, "fuzz.yaml");
    devnull = fopen("/dev/null", "w");
    if (!devnull)
        abort();
    return 0;
}

// Parse leading "#-D name=value" lines into defs (names and values point into buf).
static int read_defines(char *buf, SpecDefine *defs)
{
    int n = 0;
    char *p = buf;
    while (n < MAX_DEFS && strncmp(p, "#-D ", 4) == 0) {
        char *line = p + 4, *nl = strchr(line, '\n');
        if (!nl || nl - line > MAX_DEF_LEN)
            break;
        char *eq = memchr(line, '=', (size_t)(nl - line));
        if (!eq)
            break;
        *eq = 0;
        *nl = 0;
        defs[n++] = (SpecDefine){line, eq + 1};
        p = nl + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        LLVMFuzzerInitialize(NULL, NULL);
    fuzz_write(spec_path, data, size);

    // The defines are cut out of a copy; the file keeps them as comments.
    char *copy = fuzz_strndup(data, size);
    SpecDefine defs[MAX_DEFS];
    int n_defs = read_defines(copy, defs);

    Diag d;
    diag_init(&d);
    d.out = devnull;
    Graph *g = spec_load(spec_path, defs, n_defs, &d);
    if (g && diag_count(&d) == 0) {
        PipelineOptions po = {0};
        if (ir_run_pipeline(g, &po, &d)) {
            CgOptions co = {.command = "kiln emit fuzz.yaml", .isa = "native"};
            cg_emit_model(g, &co, devnull, &d);
        }
    }
    graph_free(g);
    free(copy);
    return 0;
}
