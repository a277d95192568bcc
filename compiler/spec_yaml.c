/* compiler/spec_yaml.c: read a spec file with libyaml into a tree of YNodes.
 *
 * First step of the front end (spec_load in spec.c walks the tree).  libyaml's event API
 * gives scalars, sequences and mappings with 0-based marks; we keep them as 1-based SrcLocs
 * and note, for one-line scalars written without escapes, the column of their first
 * character, so that an error inside an expression can point at its exact column.
 *
 * Everything a spec cannot use is rejected here with a message at its place: aliases,
 * non-scalar mapping keys, duplicate keys, more than one document, deep nesting.  The input
 * may be anything (the parsers are fuzzed): every event type is handled, nothing recurses.
 */
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum {
    MAX_NEST = 64,                  // open sequences/mappings at once
    MAX_FILE = 16 * 1024 * 1024,    // bytes in a spec file
};

/* ---- reading the file ----------------------------------------------------------------- */

// Read all of `path`; returns a malloc'd buffer (NUL-terminated) or NULL after an error.
static char *read_all(const char *path, const char *file, size_t *len, Diag *d)
{
    SrcLoc nowhere = {file, 0, 0};
    // O_NONBLOCK so that a FIFO or device named as the spec is refused, not waited on.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        diag_error(d, nowhere, "cannot open the spec: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        diag_error(d, nowhere, "the spec is not a regular file%s",
                   S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        diag_error(d, nowhere, "cannot open the spec: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 == cap) {
            if (cap > MAX_FILE) {
                diag_error(d, nowhere, "the spec is larger than %d MiB", MAX_FILE >> 20);
                free(buf);
                fclose(f);
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        diag_error(d, nowhere, "cannot read the spec: %s", strerror(errno));
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- tree building -------------------------------------------------------------------- */

// Frame: an open sequence or mapping.  Children collect in malloc'd vectors and move into
// the arena when the container closes.
typedef struct {
    YNode *node;
    YNode **items;          // sequence items, or mapping keys and values alternately
    int n, cap;
} Frame;

typedef struct {
    const char *file;
    const char *buf;        // the whole file, for locating reader errors
    Arena *a;
    Diag *d;
    Frame stack[MAX_NEST];
    int depth;
    YNode *root;
} Builder;

static SrcLoc mark_loc(const Builder *b, yaml_mark_t m)
{
    return (SrcLoc){b->file, (int)m.line + 1, (int)m.column + 1};
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static YNode *make_scalar(Builder *b, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (strlen(text) != len) {
        diag_error(b->d, mark_loc(b, ev->start_mark), "a NUL character in a string");
        return NULL;
    }
    YNode *n = arena_alloc(b->a, sizeof *n);
    n->kind = YN_SCALAR;
    n->loc = mark_loc(b, ev->start_mark);
    n->str = arena_strdup(b->a, text);
    yaml_scalar_style_t style = ev->data.scalar.style;
    n->quoted = style != YAML_PLAIN_SCALAR_STYLE && style != YAML_ANY_SCALAR_STYLE;
    // Map byte offsets in str onto columns when the source is str itself on one line
    // (plain), or str between two quotes with no escapes.
    size_t span = ev->end_mark.index - ev->start_mark.index;
    bool one_line = ev->start_mark.line == ev->end_mark.line && is_ascii(n->str);
    if (one_line && !n->quoted && span == len)
        n->text_col = n->loc.col;
    else if (one_line && (style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                          style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) && span == len + 2)
        n->text_col = n->loc.col + 1;
    return n;
}

static int compare_keys(const void *pa, const void *pb)
{
    const YPair *a = *(const YPair *const *)pa, *b = *(const YPair *const *)pb;
    int c = strcmp(a->key->str, b->key->str);
    if (c)
        return c;
    return a < b ? -1 : a > b;      // equal keys in file order
}

// Report keys that appear twice in a mapping (each at its second and later place).
static void check_duplicates(Builder *b, const YNode *m)
{
    if (m->n_pairs < 2)
        return;
    YPair **order = xmalloc((size_t)m->n_pairs * sizeof *order);
    for (int i = 0; i < m->n_pairs; i++)
        order[i] = &m->pairs[i];
    qsort(order, (size_t)m->n_pairs, sizeof *order, compare_keys);
    for (int i = 1, first = 0; i < m->n_pairs; i++) {
        if (strcmp(order[i]->key->str, order[first]->key->str) != 0) {
            first = i;
            continue;
        }
        diag_error(b->d, order[i]->key->loc, "duplicate key '%s'", order[i]->key->str);
        diag_note(b->d, order[first]->key->loc, "'%s' is first given here", order[first]->key->str);
    }
    free(order);
}

// Attach a finished node to the open container (or make it the root).  Returns false on a
// fatal error.
static bool attach(Builder *b, YNode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return true;
    }
    Frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == YN_MAP && f->n % 2 == 0 && n->kind != YN_SCALAR) {
        diag_error(b->d, n->loc, "a mapping key must be a plain string, found %s",
                   n->kind == YN_SEQ ? "a list" : "a mapping");
        return false;
    }
    VEC_PUSH(f->items, f->n, f->cap, n);
    return true;
}

static bool open_container(Builder *b, YNodeKind kind, yaml_mark_t m)
{
    YNode *n = arena_alloc(b->a, sizeof *n);
    n->kind = kind;
    n->loc = mark_loc(b, m);
    if (b->depth == MAX_NEST) {
        diag_error(b->d, n->loc, "lists and mappings nest more than %d deep", MAX_NEST);
        return false;
    }
    if (!attach(b, n))
        return false;
    b->stack[b->depth++] = (Frame){n, NULL, 0, 0};
    return true;
}

static void close_container(Builder *b)
{
    Frame *f = &b->stack[--b->depth];
    YNode *n = f->node;
    if (n->kind == YN_SEQ) {
        n->n_items = f->n;
        n->items = arena_alloc(b->a, (size_t)f->n * sizeof *n->items);
        if (f->n)
            memcpy(n->items, f->items, (size_t)f->n * sizeof *n->items);
    } else {
        n->n_pairs = f->n / 2;   // libyaml always pairs keys with values
        n->pairs = arena_alloc(b->a, (size_t)n->n_pairs * sizeof *n->pairs);
        for (int i = 0; i < n->n_pairs; i++)
            n->pairs[i] = (YPair){f->items[2 * i], f->items[2 * i + 1]};
        check_duplicates(b, n);
    }
    free(f->items);
    f->items = NULL;
}

// Report libyaml's error at its place: its problem text, and its context as a note.
static void report_parser_error(Builder *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        diag_error(b->d, (SrcLoc){b->file, 0, 0}, "out of memory while reading YAML");
        return;
    }
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_READER_ERROR) {
        // The reader reports a byte offset, not a mark.
        SrcLoc loc = {b->file, 1, 1};
        for (size_t i = 0; i < p->problem_offset && b->buf[i]; i++) {
            if (b->buf[i] == '\n') {
                loc.line++;
                loc.col = 1;
            } else {
                loc.col++;
            }
        }
        if (p->problem_value != -1)
            diag_error(b->d, loc, "YAML syntax error: %s (byte 0x%02x)", problem,
                       (unsigned)p->problem_value & 0xff);
        else
            diag_error(b->d, loc, "YAML syntax error: %s", problem);
        return;
    }
    diag_error(b->d, mark_loc(b, p->problem_mark), "YAML syntax error: %s", problem);
    if (p->context)
        diag_note(b->d, mark_loc(b, p->context_mark), "%s", p->context);
}

YNode *yaml_read_file(const char *path, const char *file, Arena *a, Diag *d)
{
    size_t len = 0;
    char *buf = read_all(path, file, &len, d);
    if (!buf)
        return NULL;
    Builder b = {.file = file, .buf = buf, .a = a, .d = d};
    int errors_before = diag_count(d);

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        KILN_BUG("yaml_parser_initialize failed");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    int n_docs = 0;
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            report_parser_error(&b, &parser);
            ok = false;
            break;
        }
        switch (ev.type) {
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++n_docs > 1) {
                diag_error(d, mark_loc(&b, ev.start_mark),
                           "a spec is one YAML document; a second one starts here");
                ok = false;
            }
            break;
        case YAML_ALIAS_EVENT:
            diag_error(d, mark_loc(&b, ev.start_mark), "YAML aliases ('*%s') are not supported "
                       "in specs", ev.data.alias.anchor ? (const char *)ev.data.alias.anchor : "");
            ok = false;
            break;
        case YAML_SCALAR_EVENT: {
            YNode *n = make_scalar(&b, &ev);
            ok = n && attach(&b, n);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
            ok = open_container(&b, YN_SEQ, ev.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            ok = open_container(&b, YN_MAP, ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0)
                close_container(&b);
            break;
        }
        yaml_event_delete(&ev);
    }
    while (b.depth > 0)
        free(b.stack[--b.depth].items);
    yaml_parser_delete(&parser);
    free(buf);
    if (!ok || diag_count(d) > errors_before)
        return NULL;
    if (!b.root) {
        diag_error(d, (SrcLoc){file, 0, 0}, "the spec is empty");
        return NULL;
    }
    return b.root;
}

/* ---- queries -------------------------------------------------------------------------- */

const YPair *ymap_pair(const YNode *m, const char *key)
{
    if (!m || m->kind != YN_MAP)
        return NULL;
    for (int i = 0; i < m->n_pairs; i++)
        if (strcmp(m->pairs[i].key->str, key) == 0)
            return &m->pairs[i];
    return NULL;
}

YNode *ymap_get(const YNode *m, const char *key)
{
    const YPair *p = ymap_pair(m, key);
    return p ? p->val : NULL;
}

const char *ynode_describe(const YNode *n, char *buf, size_t size)
{
    if (!n)
        return "nothing";
    if (n->kind == YN_SEQ)
        return n->n_items ? "a list" : "an empty list";
    if (n->kind == YN_MAP)
        return n->n_pairs ? "a mapping" : "an empty mapping";
    if (!n->str[0])
        return "an empty value";
    size_t len = strlen(n->str);
    if (len > 40)
        snprintf(buf, size, "'%.37s...'", n->str);
    else
        snprintf(buf, size, "'%s'", n->str);
    return buf;
}
