/* ir/diag.c: diagnostics for spec errors, and the internal-error path.
 *
 * A spec error names its place as file:line:col, prints the spec line with a caret under
 * the column (as chibicc's verror_at does) and counts toward diag_count(); the driver stops
 * at the end of a phase with errors.  Internal errors (KILN_BUG) are kiln's own bugs: they
 * print where in kiln's source they happened and abort.
 */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d)
{
    memset(d, 0, sizeof *d);
    d->out = stderr;
}

int diag_count(const Diag *d) { return d->n_errors; }

// Print line `line` of `file` with a caret under `col`; silently nothing if unreadable.
static void print_source_line(FILE *out, const char *file, int line, int col)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    char buf[1024];
    int ln = 1;
    bool found = false;
    while (fgets(buf, sizeof buf, f)) {
        size_t n = strlen(buf);
        bool whole = n > 0 && buf[n - 1] == '\n';
        if (ln == line) {
            if (whole)
                buf[--n] = 0;
            found = true;
            break;
        }
        if (whole)
            ln++;
    }
    fclose(f);
    if (!found)
        return;
    fprintf(out, "%5d | %s\n      | ", line, buf);
    for (int i = 1; i < col && buf[i - 1]; i++)
        fputc(buf[i - 1] == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}

static void vreport(Diag *d, SrcLoc loc, const char *kind, const char *fmt, va_list ap)
{
    FILE *out = d->out ? d->out : stderr;
    if (loc.file && loc.line > 0)
        fprintf(out, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
    else if (loc.file)
        fprintf(out, "%s: %s: ", loc.file, kind);
    else
        fprintf(out, "kiln: %s: ", kind);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    if (loc.file && loc.line > 0 && !d->quiet_source)
        print_source_line(out, loc.file, loc.line, loc.col);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(d, loc, "error", fmt, ap);
    va_end(ap);
    d->n_errors++;
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(d, loc, "note", fmt, ap);
    va_end(ap);
}

_Noreturn void kiln_bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln: internal error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputs("\n(this is a bug in kiln, not in your spec)\n", stderr);
    va_end(ap);
    abort();
}
