/* dump.c: intermediate tensors written to a folder, for `--dump-dir DIR`.
 *
 * Two writers use it, so that their folders look alike and can be compared name by name
 * (`kiln diff --bisect`):
 *
 *   - model binaries built with `kiln build --dump`: the generated forward() calls
 *     kiln_dump_node after every kernel (codegen/dump.c writes those calls and the
 *     kiln_model.dump table); kiln_main opens the folder for the first forward only;
 *   - `kiln interp --dump-dir DIR` (compiler/dump.c), after every node it evaluates.
 *
 * A folder holds DIR/NAME.npy for every value written, NAME being the spec name of the
 * value (`h.3.attn.probs`), and DIR/index.tsv, written when the folder is closed: a header
 * line, then one line per value in the order they were computed (a topological order):
 *
 *   name  op  dtype  shape  spec  kernel  file  inputs
 *
 * tab-separated; `spec` is FILE:LINE of the spec node, `kernel` the generated C function
 * that computed it (`-` for the interpreter and for views), `file` NAME.npy or
 * `(fused into OTHER)` for a spec node a fused kernel absorbed (its value never existed in
 * memory: OTHER's did), `inputs` the names of the values it reads, space-separated.
 * docs/inspect.md shows an example.  Nothing here exits; errors come back with a message.
 */
#include "kiln_rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct kiln_dump {
    char *dir;              // the folder, as given
    char *index;            // the index lines so far (malloc'd, NUL-terminated)
    size_t len, cap;
    int n_written;          // .npy files written
};

// Append formatted text to the index; false when out of memory.
static bool index_addf(kiln_dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool index_addf(kiln_dump *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if (d->len + (size_t)n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(d->index, cap);
        if (!p)
            return false;
        d->index = p;
        d->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(d->index + d->len, d->cap - d->len, fmt, ap);
    va_end(ap);
    d->len += (size_t)n;
    return true;
}

kiln_dump *kiln_dump_open(const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (!dir || !dir[0]) {
        kiln_seterr(err, errlen, "--dump-dir needs a folder");
        return NULL;
    }
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0) {
            kiln_seterr(err, errlen, "%s: cannot create the folder: %s", dir, strerror(errno));
            return NULL;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        kiln_seterr(err, errlen, "%s: is not a folder", dir);
        return NULL;
    }
    kiln_dump *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir)) ||
        !index_addf(d, "name\top\tdtype\tshape\tspec\tkernel\tfile\tinputs\n")) {
        if (d)
            free(d->dir);
        free(d);
        kiln_seterr(err, errlen, "out of memory");
        return NULL;
    }
    return d;
}

// A field of the index: the text, or "-" for none; tabs and newlines would break the
// format, so they become spaces (spec names never hold them).
static bool add_field(kiln_dump *d, const char *s, bool last) {
    if (!s || !s[0])
        s = "-";
    for (const char *p = s; *p; p++)
        if (!index_addf(d, "%c", *p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p))
            return false;
    return index_addf(d, "%s", last ? "\n" : "\t");
}

int kiln_dump_add(kiln_dump *d, const kiln_dump_entry *e, const int64_t *dims,
                  const void *data, char *err, size_t errlen) {
    char shape[160] = "-", path[4096], file[600];
    if (!e->held_by) {
        size_t pos = 0;
        pos += (size_t)snprintf(shape, sizeof shape, "[");
        for (int k = 0; k < e->rank && pos < sizeof shape; k++)
            pos += (size_t)snprintf(shape + pos, sizeof shape - pos, "%s%lld", k ? ", " : "",
                                    (long long)dims[k]);
        if (pos < sizeof shape)
            snprintf(shape + pos, sizeof shape - pos, "]");
        // The file name is the value's name; a '/' (never in a spec name) cannot escape DIR.
        if (strchr(e->name, '/') || snprintf(file, sizeof file, "%s.npy", e->name) >=
                                        (int)sizeof file)
            return kiln_seterr(err, errlen, "cannot dump '%s': not a file name", e->name);
        if (snprintf(path, sizeof path, "%s/%s", d->dir, file) >= (int)sizeof path)
            return kiln_seterr(err, errlen, "%s/%s: path too long", d->dir, file);
        char msg[512];
        if (kiln_npy_write(path, e->dtype, e->rank, dims, data, msg, sizeof msg))
            return kiln_seterr(err, errlen, "%s", msg);
        d->n_written++;
    } else {
        snprintf(file, sizeof file, "(fused into %s)", e->held_by);
    }
    bool ok = add_field(d, e->name, false) && add_field(d, e->op, false) &&
              add_field(d, e->held_by ? "-" : kiln_dtype_name(e->dtype), false) &&
              add_field(d, shape, false) && add_field(d, e->spec, false) &&
              add_field(d, e->kernel, false) && add_field(d, file, false) &&
              add_field(d, e->inputs, true);
    return ok ? 0 : kiln_seterr(err, errlen, "out of memory");
}

int kiln_dump_close(kiln_dump *d, char *err, size_t errlen) {
    if (!d)
        return 0;
    int rc = 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/index.tsv", d->dir) >= (int)sizeof path) {
        rc = kiln_seterr(err, errlen, "%s/index.tsv: path too long", d->dir);
    } else {
        // Atomically, as the .npy files: a temporary beside it, then rename.
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
        int fd = mkstemp(tmp);
        if (fd >= 0) {      // the mode a plain creat() would give, as npy.c does
            mode_t mask = umask(0);
            umask(mask);
            fchmod(fd, 0666 & ~mask);
        }
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            rc = kiln_seterr(err, errlen, "%s: cannot create: %s", path, strerror(errno));
            if (fd >= 0) {
                close(fd);
                unlink(tmp);
            }
        } else {
            bool ok = fwrite(d->index, 1, d->len, f) == d->len;
            ok = fclose(f) == 0 && ok;
            if (!ok || rename(tmp, path) != 0) {
                rc = kiln_seterr(err, errlen, "%s: write failed: %s", path, strerror(errno));
                unlink(tmp);
            }
        }
    }
    free(d->index);
    free(d->dir);
    free(d);
    return rc;
}

int kiln_dump_count(const kiln_dump *d) {
    return d ? d->n_written : 0;
}

int kiln_dump_node(kiln_run *r, int first, int count, const void *data) {
    const kiln_model *m = r->model;
    if (!r->dump)
        return 0;
    if (!m->dump || first < 0 || count < 1 || first + count > m->n_dump)
        return kiln_fail(r, "internal error: dump entries %d..%d of %d", first,
                         first + count - 1, m->n_dump);
    for (int i = first; i < first + count; i++) {
        const kiln_dump_entry *e = &m->dump[i];
        int64_t dims[KILN_RT_MAX_RANK];
        for (int k = 0; k < e->rank && k < KILN_RT_MAX_RANK; k++)
            dims[k] = e->sym[k] >= 0 ? r->sym[e->sym[k]] : e->dims[k];
        char msg[512];
        if (kiln_dump_add(r->dump, e, dims, data, msg, sizeof msg))
            return kiln_fail(r, "--dump-dir: %s", msg);
    }
    return 0;
}
