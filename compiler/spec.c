/* compiler/spec.c: the spec reader, YAML tree -> IR graph.
 *
 * First stage of the pipeline (driver -> spec_load -> passes -> codegen).  spec_yaml.c
 * turns the file into a YNode tree; this file walks it in the order of docs/spec.md:
 * top-level keys, params (with -D overrides), dims, weight_prefixes, inputs, the graph list
 * (nodes, the `split` macro, `repeat` blocks), outputs.  Nodes are made only through
 * graph_add_source/graph_add_node, which run shape inference, so shape and dtype errors
 * come from ir/shape.c at the node's place: the position of its `op:` value.
 *
 * Error policy: report everything that can be told apart, never a consequence.  A name
 * whose definition failed is kept in the name table as "failed"; anything that reads it
 * fails silently.  In a repeat body, an item that failed in one iteration is re-run in
 * later ones with a muted Diag, so a layer-independent mistake is reported once; a mistake
 * that shows only in a later iteration is reported with a note naming the iteration.
 */
#include "front.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_NODES = 1 << 20,        // nodes in one graph
    MAX_ITERATIONS = 1 << 20,   // repeat iterations in one spec, nested ones included
    MAX_SYMS = 64,              // dims: (shape inference tracks symbols in 64-entry tables)
    MAX_ERRORS = 50,            // then stop: later messages are rarely worth reading
    MAX_AXIS = 64,              // |axis| read from a spec; the op checks it against the rank
};
#define MAX_DIM ((int64_t)1 << 40)  // a static dimension (shape.c caps element counts too)

/* =======================================================================================
 * Context: names and scopes
 */

// Entry: a value name in the graph's namespace (full names: "h.0.attn.qk").
typedef struct {
    const char *key;        // NULL: free slot
    NodeId id;              // -1: its definition failed (readers fail silently)
    SrcLoc loc;             // where it is defined
} Entry;

typedef struct {
    Entry *slots;           // open addressing, cap a power of two
    int cap, n;
} NameTable;

// Scope: the top level, or one iteration of a repeat body.
typedef struct Scope Scope;
struct Scope {
    Scope *up;
    const char *prefix;     // "" at the top, "h.3." in iteration 3 of repeat h
    const char *block;      // Node.block of nodes made here: "h.3" (graph arena); NULL at the top
    // repeat iteration only
    const char *repeat;     // the repeat's name as written ("h")
    SrcLoc repeat_loc;      // of its `repeat:` value
    int iter;
    const char *index;      // the index name, or NULL
    bool index_used;        // an expression read the index since this was cleared
    const char *carry;      // the body's name of the carried value, or NULL
    NodeId carry_id;        // its value in this iteration (-1: failed)
    SrcLoc carry_loc;
    // derived names
    const char *last_named; // last name given with `name:` in this scope (unprefixed)
    int n_unnamed;          // counter for "<op>.<n>" names
    char *last_base;        // the last derived base name, and the suffix it last took, so
    int last_suffix;        // that a run of unnamed nodes does not probe 2, 3, ... each time
};

typedef struct {
    Graph *g;
    Diag *d;                // where errors go now (the muted Diag inside failing repeats)
    Diag *real;             // the caller's Diag
    Diag mute;              // swallows repeated messages (out is /dev/null)
    const char *file;       // g->spec_path
    Arena tmp;              // the YAML tree and scratch strings
    NameTable names;
    NameTable param_index;  // parameter name -> index in g->params (in Entry.id)
    Scope *scope;
    // params: g->params holds names and values in order; these run in parallel
    bool *param_failed;     // [g->n_params]: evaluation failed (readers fail silently)
    const YNode *params_map;    // the `params:` mapping, to tell "defined later" apart
    int n_iterations;       // repeat iterations so far
    bool aborted;           // a size limit was hit: stop walking
} Spec;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static Entry *table_slot(NameTable *t, const char *key)
{
    uint32_t mask = (uint32_t)t->cap - 1;
    for (uint32_t i = hash_str(key) & mask;; i = (i + 1) & mask)
        if (!t->slots[i].key || strcmp(t->slots[i].key, key) == 0)
            return &t->slots[i];
}

static Entry *table_get(NameTable *t, const char *key)
{
    if (!t->cap)
        return NULL;
    Entry *e = table_slot(t, key);
    return e->key ? e : NULL;
}

static void table_put_in(Spec *s, NameTable *t, const char *key, NodeId id, SrcLoc loc)
{
    if (2 * (t->n + 1) > t->cap) {
        NameTable big = {xcalloc((size_t)(t->cap ? 2 * t->cap : 256), sizeof(Entry)),
                         t->cap ? 2 * t->cap : 256, 0};
        for (int i = 0; i < t->cap; i++)
            if (t->slots[i].key) {
                *table_slot(&big, t->slots[i].key) = t->slots[i];
                big.n++;
            }
        free(t->slots);
        *t = big;
    }
    Entry *e = table_slot(t, key);
    if (!e->key)
        t->n++;
    *e = (Entry){arena_strdup(&s->tmp, key), id, loc};
}

static void table_put(Spec *s, const char *key, NodeId id, SrcLoc loc)
{
    table_put_in(s, &s->names, key, id, loc);
}

/* ---- suggestions ---------------------------------------------------------------------- */

// Closest: the candidate nearest to `target` by edit distance, if near enough to suggest.
typedef struct {
    const char *target;
    const char *best;
    int dist;
} Closest;

static Closest closest_init(const char *target) { return (Closest){target, NULL, 1 << 30}; }

static void closest_try(Closest *c, const char *cand)
{
    if (!cand || strcmp(cand, c->target) == 0)
        return;
    int dist = str_edit_distance(c->target, cand);
    if (dist < c->dist) {
        c->dist = dist;
        c->best = cand;
    }
}

// Is the best candidate close enough to suggest?  (A third of the target's letters may
// differ, at least one.)
static bool closest_near(const Closest *c)
{
    int limit = (int)strlen(c->target) / 3;
    return c->best && c->dist <= (limit < 1 ? 1 : limit);
}

// "; did you mean 'x'?" when the best candidate is close enough, else "".
static const char *closest_hint(const Closest *c, char *buf, size_t n)
{
    if (!closest_near(c))
        return "";
    snprintf(buf, n, "; did you mean '%s'?", c->best);
    return buf;
}

// The closest of `words` to `target` if near enough to suggest, else NULL.
static const char *closest_best(const char *target, const char *const *words, int n_words)
{
    Closest c = closest_init(target);
    for (int i = 0; i < n_words; i++)
        closest_try(&c, words[i]);
    return closest_near(&c) ? c.best : NULL;
}

// The value of `key` in mapping m; when absent, the value of an unknown key (not in
// `keys`) that is a misspelling of it, so that one typo makes one error (reported by
// check_keys), not a second one for the "missing" key and more for what it defines.
static const YPair *get_pair(const YNode *m, const char *key, const char *const *keys,
                             int n_keys)
{
    const YPair *v = ymap_pair(m, key);
    if (v || !m || m->kind != YN_MAP)
        return v;
    for (int i = 0; i < m->n_pairs; i++) {
        const char *k = m->pairs[i].key->str;
        bool known = false;
        for (int j = 0; j < n_keys; j++)
            known |= strcmp(k, keys[j]) == 0;
        const char *best = known ? NULL : closest_best(k, keys, n_keys);
        if (best && strcmp(best, key) == 0)
            return &m->pairs[i];
    }
    return NULL;
}

static const YNode *get_key(const YNode *m, const char *key, const char *const *keys,
                            int n_keys)
{
    const YPair *p = get_pair(m, key, keys, n_keys);
    return p ? p->val : NULL;
}

// Hint for one of a fixed list of words.
static const char *closest_word(const char *target, const char *const *words, int n_words,
                                char *buf, size_t n)
{
    Closest c = closest_init(target);
    for (int i = 0; i < n_words; i++)
        closest_try(&c, words[i]);
    return closest_hint(&c, buf, n);
}

/* ---- value names ---------------------------------------------------------------------- */

typedef enum { LOOK_UNKNOWN, LOOK_FAILED, LOOK_OK } Look;

// Resolve a value name as the current scope sees it: per scope, innermost first, the same
// iteration's names, then the carried value; at the top, every full name.
static Look lookup_value(Spec *s, const char *name, NodeId *id)
{
    for (Scope *sc = s->scope; sc; sc = sc->up) {
        Entry *e;
        if (sc->prefix[0]) {
            char *full = xsprintf("%s%s", sc->prefix, name);
            e = table_get(&s->names, full);
            free(full);
        } else {
            e = table_get(&s->names, name);
        }
        if (e) {
            *id = e->id;
            return e->id >= 0 ? LOOK_OK : LOOK_FAILED;
        }
        if (sc->carry && strcmp(sc->carry, name) == 0) {
            *id = sc->carry_id;
            return sc->carry_id >= 0 ? LOOK_OK : LOOK_FAILED;
        }
    }
    return LOOK_UNKNOWN;
}

// Report an unknown value name at `loc`, suggesting the closest name visible here.
static void unknown_value(Spec *s, SrcLoc loc, const char *name, const char *what)
{
    if (s->d == &s->mute) {     // a repeat of a reported error: skip the search for a hint
        diag_error(s->d, loc, "%s '%s'", what, name);
        return;
    }
    Closest c = closest_init(name);
    for (int i = 0; i < s->names.cap; i++) {
        const char *key = s->names.slots[i].key;
        if (!key)
            continue;
        for (Scope *sc = s->scope; sc; sc = sc->up) {
            size_t lp = strlen(sc->prefix);
            if (strncmp(key, sc->prefix, lp) == 0)
                closest_try(&c, key + lp);
        }
    }
    for (Scope *sc = s->scope; sc; sc = sc->up)
        closest_try(&c, sc->carry);
    char hint[160];
    diag_error(s->d, loc, "%s '%s'%s", what, name, closest_hint(&c, hint, sizeof hint));
}

// Define the full name `full` as `id` (-1: failed).  Reports a duplicate (and returns false).
static bool define_name(Spec *s, const char *full, NodeId id, SrcLoc loc)
{
    Entry *e = table_get(&s->names, full);
    if (e) {
        diag_error(s->d, loc, "duplicate name '%s'", full);
        diag_note(s->d, e->loc, "'%s' is first defined here", full);
        return false;
    }
    table_put(s, full, id, loc);
    return true;
}

// Mark a node just made as written in the current repeat iteration (for dumps and dot).
static void tag_block(Spec *s, NodeId id)
{
    if (id >= 0)
        graph_node(s->g, id)->block = s->scope->block;
}

/* =======================================================================================
 * Expressions
 */

static int find_param(Spec *s, const char *name)
{
    Entry *e = table_get(&s->param_index, name);
    return e ? e->id : -1;
}

// ExprEnv lookup: repeat indices (innermost first), then parameters defined so far.  A
// failed parameter yields an empty reason: the caller stays silent, it was reported.
static bool env_lookup(void *ctx, const char *name, double *value, char *why, size_t n)
{
    Spec *s = ctx;
    for (Scope *sc = s->scope; sc; sc = sc->up)
        if (sc->index && strcmp(sc->index, name) == 0) {
            sc->index_used = true;
            *value = sc->iter;
            return true;
        }
    int p = find_param(s, name);
    if (p >= 0) {
        if (s->param_failed[p]) {
            why[0] = 0;
            return false;
        }
        *value = s->g->params[p].value;
        return true;
    }
    if (graph_find_sym(s->g, name) >= 0) {
        snprintf(why, n, "'%s' is a symbolic dim: it can be a whole shape entry, not part of "
                 "an expression", name);
        return false;
    }
    if (ymap_pair(s->params_map, name)) {
        snprintf(why, n, "parameter '%s' is defined after this one", name);
        return false;
    }
    Closest c = closest_init(name);
    for (Scope *sc = s->scope; sc; sc = sc->up)
        closest_try(&c, sc->index);
    for (int i = 0; i < s->g->n_params; i++)
        closest_try(&c, s->g->params[i].name);
    char hint[160];
    snprintf(why, n, "unknown name '%s'%s", name, closest_hint(&c, hint, sizeof hint));
    return false;
}

static ExprEnv spec_env(Spec *s) { return (ExprEnv){env_lookup, s}; }

// The place of byte `pos` of scalar n's text (its own place when offsets do not map).
static SrcLoc text_loc(const YNode *n, int pos)
{
    SrcLoc loc = n->loc;
    if (n->text_col)
        loc.col = n->text_col + pos;
    return loc;
}

// Evaluate the expression in scalar `n` (`what` names it in messages: "a shape entry").
// Returns false after reporting (or silently, when a failed parameter is involved).
static bool eval_num(Spec *s, const YNode *n, const char *what, double *out)
{
    char buf[64];
    if (n->kind != YN_SCALAR || !n->str[0]) {
        diag_error(s->d, n->loc, "%s must be a number or an expression, found %s", what,
                   ynode_describe(n, buf, sizeof buf));
        return false;
    }
    ExprEnv env = spec_env(s);
    ExprError e;
    if (!expr_eval(n->str, &env, out, &e)) {
        if (e.msg[0])
            diag_error(s->d, text_loc(n, e.pos), "%s", e.msg);
        return false;
    }
    return true;
}

// "n_embd / n_head = 768 / 5 = 153.6": the expression, its values, its result.
static void describe_value(Spec *s, const YNode *n, double v, char *buf, size_t size)
{
    char val[40], sub[200];
    expr_fmt(v, val, sizeof val);
    const char *src = n->str;
    while (*src == ' ')
        src++;
    ExprEnv env = spec_env(s);
    bool has_sub = expr_substitute(src, &env, sub, sizeof sub);
    if (strcmp(src, val) == 0)
        snprintf(buf, size, "%s", val);
    else if (has_sub && strcmp(sub, val) != 0)
        snprintf(buf, size, "%s = %s = %s", src, sub, val);
    else
        snprintf(buf, size, "%s = %s", src, val);
}

// Evaluate a whole number in [lo, hi].  `what` starts the range message ("a dimension").
static bool eval_int(Spec *s, const YNode *n, const char *what, int64_t lo, int64_t hi,
                     int64_t *out)
{
    double v;
    if (!eval_num(s, n, what, &v))
        return false;
    char desc[320];
    if (v != floor(v)) {
        describe_value(s, n, v, desc, sizeof desc);
        diag_error(s->d, n->loc, "%s is not a whole number", desc);
        return false;
    }
    if (v < (double)lo || v > (double)hi) {
        describe_value(s, n, v, desc, sizeof desc);
        if (hi == INT64_MAX)
            diag_error(s->d, n->loc, "%s must be at least %lld, found %s", what, (long long)lo,
                       desc);
        else
            diag_error(s->d, n->loc, "%s must be between %lld and %lld, found %s", what,
                       (long long)lo, (long long)hi, desc);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* =======================================================================================
 * Small readers: strings, names, booleans, dtypes, shapes
 */

// The text of scalar `n`, or NULL after "<what> must be ..., found a list".
static const char *want_string(Spec *s, const YNode *n, const char *what)
{
    char buf[64];
    if (n->kind != YN_SCALAR || !n->str[0]) {
        diag_error(s->d, n->loc, "%s must be a string, found %s", what,
                   ynode_describe(n, buf, sizeof buf));
        return NULL;
    }
    return n->str;
}

static bool is_identifier(const char *p)
{
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
        return false;
    for (p++; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

// Value names: letters, digits, '_' and '.', with dots only between other characters.
static bool is_value_name(const char *p)
{
    if (!*p || *p == '.' || strlen(p) > 200)
        return false;
    for (; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                  (*p >= '0' && *p <= '9') || (*p == '.' && p[1] && p[1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

// An identifier (inputs, outputs, params, dims, indices, the model name).
static const char *want_identifier(Spec *s, const YNode *n, const char *what)
{
    const char *str = want_string(s, n, what);
    if (str && (!is_identifier(str) || strlen(str) > 200)) {
        diag_error(s->d, n->loc, "%s '%s' is not a valid name (letters, digits and '_', not "
                   "starting with a digit)", what, str);
        return NULL;
    }
    return str;
}

// A value name (`name:`, `names:`, `repeat:`, `carry:`).
static const char *want_value_name(Spec *s, const YNode *n, const char *what)
{
    const char *str = want_string(s, n, what);
    if (str && !is_value_name(str)) {
        diag_error(s->d, n->loc, "%s '%s' is not a valid name (letters, digits, '_' and '.' "
                   "between them)", what, str);
        return NULL;
    }
    return str;
}

// bool = "true" | "false"
static bool read_bool(Spec *s, const YNode *n, const char *what, bool *out)
{
    char buf[64];
    if (n->kind == YN_SCALAR && !n->quoted && strcmp(n->str, "true") == 0)
        return *out = true, true;
    if (n->kind == YN_SCALAR && !n->quoted && strcmp(n->str, "false") == 0)
        return *out = false, true;
    diag_error(s->d, n->loc, "%s must be true or false, found %s", what,
               ynode_describe(n, buf, sizeof buf));
    return false;
}

// dtype = "f32" | "i32" | "i64"
static bool read_dtype(Spec *s, const YNode *n, DType *out)
{
    static const char *const names[] = {"f32", "i32", "i64"};
    static const DType types[] = {DT_F32, DT_I32, DT_I64};
    const char *str = want_string(s, n, "dtype");
    if (!str)
        return false;
    for (int i = 0; i < 3; i++)
        if (strcmp(str, names[i]) == 0)
            return *out = types[i], true;
    char hint[64];
    const char *h = closest_word(str, names, 3, hint, sizeof hint);
    diag_error(s->d, n->loc, "unknown dtype '%s'%s", str, h[0] ? h : " (dtypes: f32, i32, i64)");
    return false;
}

// A dimension: the name of a symbolic dim, or a whole-number expression >= 1.  With
// `allow_infer`, also -1 (stored as size -1).
//   ENTRY = dim-name | expr
static bool read_dim(Spec *s, const YNode *n, bool allow_infer, Dim *out)
{
    if (n->kind == YN_SCALAR) {
        const char *p = n->str;
        while (*p == ' ')
            p++;
        size_t len = strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        char word[128];
        if (len < sizeof word) {
            memcpy(word, p, len);
            word[len] = 0;
            int sym = graph_find_sym(s->g, word);
            if (sym >= 0) {
                *out = (Dim){s->g->syms[sym].max, sym};
                return true;
            }
        }
    }
    int64_t v;
    if (!eval_int(s, n, "a dimension", allow_infer ? -1 : 1, MAX_DIM, &v))
        return false;
    if (v == 0) {
        diag_error(s->d, n->loc, "a dimension must be at least 1 (or -1, inferred), found 0");
        return false;
    }
    *out = (Dim){v, -1};
    return true;
}

// shape = "[" ENTRY ("," ENTRY)* "]"    (an empty list is a scalar)
// With `allow_infer`, one entry may be -1; its index goes to *infer (else -1).
static bool read_shape(Spec *s, const YNode *n, bool allow_infer, Type *t, int *infer)
{
    char buf[64];
    if (infer)
        *infer = -1;
    if (n->kind != YN_SEQ) {
        diag_error(s->d, n->loc, "a shape must be a list of dimensions, found %s",
                   ynode_describe(n, buf, sizeof buf));
        return false;
    }
    if (n->n_items > KILN_MAX_RANK) {
        diag_error(s->d, n->loc, "a shape has at most %d dimensions, found %d", KILN_MAX_RANK,
                   n->n_items);
        return false;
    }
    bool ok = true;
    t->rank = n->n_items;
    for (int k = 0; k < n->n_items; k++) {
        if (!read_dim(s, n->items[k], allow_infer, &t->dim[k])) {
            ok = false;
            continue;
        }
        if (t->dim[k].sym < 0 && t->dim[k].size == -1) {
            if (*infer >= 0) {
                diag_error(s->d, n->items[k]->loc, "only one dimension can be -1 (inferred)");
                ok = false;
            }
            *infer = k;
        }
    }
    return ok;
}

/* =======================================================================================
 * Top-level sections: params, dims, weight_prefixes, inputs
 */

// params: { NAME: expr, ... }    evaluated in order; -D overrides replace defaults first.
static void read_params(Spec *s, const YPair *sec, const SpecDefine *defs, int n_defs)
{
    Graph *g = s->g;
    const YNode *m = sec ? sec->val : NULL;
    SrcLoc where = sec ? sec->key->loc : (SrcLoc){s->file, 0, 0};
    char buf[64];
    if (m && m->kind != YN_MAP && !(m->kind == YN_SCALAR && !m->str[0])) {
        diag_error(s->d, m->loc, "params must be a mapping of names to values, found %s",
                   ynode_describe(m, buf, sizeof buf));
        m = NULL;
    }
    if (m && m->kind != YN_MAP)
        m = NULL;
    s->params_map = m;
    int n_params = m ? m->n_pairs : 0;
    s->param_failed = xcalloc((size_t)n_params + 1, sizeof *s->param_failed);

    // -D values, checked against the names before anything is evaluated.
    double *override = xcalloc((size_t)n_params + 1, sizeof *override);
    bool *has_override = xcalloc((size_t)n_params + 1, sizeof *has_override);
    for (int i = 0; i < n_defs; i++) {
        const char *name = defs[i].name ? defs[i].name : "";
        const char *value = defs[i].value ? defs[i].value : "";
        int k = -1;
        for (int j = 0; j < n_params; j++)
            if (strcmp(m->pairs[j].key->str, name) == 0)
                k = j;
        if (k < 0) {
            Closest c = closest_init(name);
            for (int j = 0; j < n_params; j++)
                closest_try(&c, m->pairs[j].key->str);
            char hint[160];
            diag_error(s->d, where, "-D %s=%s: unknown parameter '%s'%s", name, value, name,
                       closest_hint(&c, hint, sizeof hint));
            continue;
        }
        double v;
        if (!expr_eval(value, NULL, &v, NULL)) {
            diag_error(s->d, where, "-D %s=%s: the value must be a number", name, value);
            continue;
        }
        override[k] = v;
        has_override[k] = true;
    }

    for (int i = 0; i < n_params; i++) {
        const YPair *p = &m->pairs[i];
        const char *name = want_identifier(s, p->key, "parameter name");
        if (!name)
            continue;
        double v = 0;
        bool ok = true;
        if (has_override[i])
            v = override[i];
        else
            ok = eval_num(s, p->val, "a parameter", &v);
        s->param_failed[g->n_params] = !ok;
        table_put_in(s, &s->param_index, name, g->n_params, p->key->loc);
        Param prm = {arena_strdup(&g->arena, name), v, has_override[i]};
        VEC_PUSH(g->params, g->n_params, g->cap_params, prm);
    }
    free(override);
    free(has_override);
}

// Whether `key` is the `position:` key of the state section.
static bool is_position_key(const YNode *key)
{
    return key->kind == YN_SCALAR && strcmp(key->str, "position") == 0;
}

// dims: { NAME: bound-expr, ... }
// `position` names the state's position dim (state: position:), or is NULL: its bound may be
// 0, a model whose cache holds no earlier tokens (GPT-2 with n_positions 1), since the
// runtime binds it from 0 up; every other dim is bound by an input's shape, from 1 up.
static void read_dims(Spec *s, const YNode *m, const char *position)
{
    char buf[64];
    if (m->kind != YN_MAP) {
        diag_error(s->d, m->loc, "dims must be a mapping of names to upper bounds, found %s",
                   ynode_describe(m, buf, sizeof buf));
        return;
    }
    for (int i = 0; i < m->n_pairs; i++) {
        const YPair *p = &m->pairs[i];
        const char *name = want_identifier(s, p->key, "dim name");
        if (!name)
            continue;
        if (find_param(s, name) >= 0) {
            diag_error(s->d, p->key->loc, "dim '%s' has the name of a parameter", name);
            continue;
        }
        if (s->g->n_syms == MAX_SYMS) {
            diag_error(s->d, p->key->loc, "a spec has at most %d dims", MAX_SYMS);
            return;
        }
        bool is_position = position && strcmp(name, position) == 0;
        int64_t bound = 1;
        eval_int(s, p->val, is_position ? "the position dim's upper bound" : "a dim's upper bound",
                 is_position ? 0 : 1, INT32_MAX, &bound);
        // Declared even when the bound failed, so that shapes naming it report nothing more.
        graph_add_sym(s->g, name, bound, p->key->loc);
    }
}

// weight_prefixes: [ STRING, ... ]
static void read_weight_prefixes(Spec *s, const YNode *n)
{
    char buf[64];
    if (n->kind != YN_SEQ) {
        diag_error(s->d, n->loc, "weight_prefixes must be a list of strings, found %s",
                   ynode_describe(n, buf, sizeof buf));
        return;
    }
    for (int i = 0; i < n->n_items; i++) {
        const char *str = want_string(s, n->items[i], "a weight prefix");
        if (str) {
            const char *p = arena_strdup(&s->g->arena, str);
            VEC_PUSH(s->g->weight_prefixes, s->g->n_weight_prefixes, s->g->cap_weight_prefixes, p);
        }
    }
}

// Report keys of mapping `m` that are not in `keys` (with the closest one).
static bool check_keys(Spec *s, const YNode *m, const char *const *keys, int n_keys,
                       const char *what)
{
    bool ok = true;
    for (int i = 0; i < m->n_pairs; i++) {
        const YNode *k = m->pairs[i].key;
        bool known = false;
        for (int j = 0; j < n_keys; j++)
            known |= strcmp(k->str, keys[j]) == 0;
        if (!known) {
            char hint[160];
            diag_error(s->d, k->loc, "unknown key '%s' in %s%s", k->str, what,
                       closest_word(k->str, keys, n_keys, hint, sizeof hint));
            ok = false;
        }
    }
    return ok;
}

// range: [LO, HI] of an integer input: the values it may hold, both ends included.
static bool read_range(Spec *s, const char *name, const Type *t, const YNode *n, int64_t *lo,
                       int64_t *hi)
{
    char buf[64];
    if (t->dtype == DT_F32) {
        diag_error(s->d, n->loc, "input '%s' is f32; 'range' applies to integer inputs", name);
        return false;
    }
    if (n->kind != YN_SEQ || n->n_items != 2) {
        diag_error(s->d, n->loc, "'range' must be a list [LOW, HIGH], found %s",
                   ynode_describe(n, buf, sizeof buf));
        return false;
    }
    if (!eval_int(s, n->items[0], "the range's low end", INT32_MIN, INT32_MAX, lo) ||
        !eval_int(s, n->items[1], "the range's high end", INT32_MIN, INT32_MAX, hi))
        return false;
    if (*lo > *hi) {
        diag_error(s->d, n->loc, "input '%s': the range [%lld, %lld] is empty (low above high)",
                   name, (long long)*lo, (long long)*hi);
        return false;
    }
    return true;
}

// inputs: { NAME: { dtype: DTYPE, shape: SHAPE, range: [LO, HI] }, ... }
// (dtype defaults to f32; range, optional, bounds an integer input's values)
static void read_inputs(Spec *s, const YNode *m)
{
    static const char *const keys[] = {"dtype", "shape", "range"};
    Graph *g = s->g;
    char buf[64];
    if (m->kind != YN_MAP) {
        diag_error(s->d, m->loc, "inputs must be a mapping of names to { dtype, shape }, found %s",
                   ynode_describe(m, buf, sizeof buf));
        return;
    }
    for (int i = 0; i < m->n_pairs; i++) {
        const YPair *p = &m->pairs[i];
        const char *name = want_identifier(s, p->key, "input name");
        if (!name)
            continue;
        const YNode *v = p->val;
        NodeId id = -1;
        Type t = {.dtype = DT_F32};
        bool ok = true, has_range = false;
        int64_t lo = 0, hi = 0;
        if (v->kind != YN_MAP) {
            diag_error(s->d, v->loc, "input '%s' must be a mapping { dtype, shape }, found %s",
                       name, ynode_describe(v, buf, sizeof buf));
            ok = false;
        } else {
            ok = check_keys(s, v, keys, 3, "an input");
            const YNode *dt = get_key(v, "dtype", keys, 3), *sh = get_key(v, "shape", keys, 3);
            const YNode *rg = get_key(v, "range", keys, 3);
            if (dt && !read_dtype(s, dt, &t.dtype))
                ok = false;
            if (!sh) {
                diag_error(s->d, v->loc, "input '%s' has no 'shape'", name);
                ok = false;
            } else if (!read_shape(s, sh, false, &t, NULL)) {
                ok = false;
            }
            if (ok && rg && !read_range(s, name, &t, rg, &lo, &hi))
                ok = false;
            has_range = ok && rg;
        }
        if (ok) {
            Node attr = {.attr.input = {.index = g->n_inputs, .has_range = has_range,
                                        .lo = lo, .hi = hi}};
            id = graph_add_source(g, s->d, OP_INPUT, name, p->key->loc, t, &attr);
            if (id >= 0)
                VEC_PUSH(g->inputs, g->n_inputs, g->cap_inputs, id);
        }
        define_name(s, name, id, p->key->loc);
    }
}

/* =======================================================================================
 * Nodes
 *
 *   - { op: OPNAME, name: NAME, in: [VALUE, ...], ATTRIBUTE: VALUE, ... }
 */

// Attributes each op accepts besides op, name and in.
static const char *const op_attrs[OP_COUNT][4] = {
    [OP_WEIGHT] = {"tensor", "shape", "dtype"},
    [OP_CONST] = {"value", "dtype"},
    [OP_ARANGE] = {"size", "start"},
    [OP_SCALE] = {"by"},
    [OP_GELU] = {"approximate"},
    [OP_CAST] = {"dtype"},
    [OP_MATMUL] = {"transpose_a", "transpose_b"},
    [OP_SOFTMAX] = {"axis"},
    [OP_LAYER_NORM] = {"eps"},
    [OP_RESHAPE] = {"shape"},
    [OP_TRANSPOSE] = {"perm"},
    [OP_SLICE] = {"axis", "start", "end"},
    [OP_CONCAT] = {"axis"},
    [OP_CAUSAL_MASK] = {"offset"},
    [OP_CACHE_WRITE] = {"index"},
};
static const char *const split_attrs[] = {"op", "in", "axis", "parts", "sizes", "names"};
#define OP_SPLIT OP_COUNT    // the `split` macro, for the tables below

// The keys a node of `op` accepts, into valid[8]; returns how many.
static int node_keys(int op, const char **valid)
{
    int n = 0;
    if (op == OP_SPLIT) {
        for (int i = 0; i < 6; i++)
            valid[n++] = split_attrs[i];
    } else {
        valid[n++] = "op";
        valid[n++] = "name";
        if (op_info[op].cls != OPC_SOURCE)
            valid[n++] = "in";
        for (int i = 0; i < 4 && op_attrs[op][i]; i++)
            valid[n++] = op_attrs[op][i];
    }
    return n;
}

// Check a node's keys against its op; report unknown ones with the closest valid key.
static bool check_node_keys(Spec *s, const YNode *m, int op)
{
    const char *valid[8];
    int n = node_keys(op, valid);
    const char *opname = op == OP_SPLIT ? "split" : op_info[op].name;
    bool ok = true;
    for (int i = 0; i < m->n_pairs; i++) {
        const YNode *k = m->pairs[i].key;
        bool known = false;
        for (int j = 0; j < n; j++)
            known |= strcmp(k->str, valid[j]) == 0;
        if (known)
            continue;
        ok = false;
        if (strcmp(k->str, "in") == 0) {
            diag_error(s->d, k->loc, "%s takes no inputs", opname);
            continue;
        }
        char hint[160];
        const char *h = closest_word(k->str, valid, n, hint, sizeof hint);
        if (h[0])
            diag_error(s->d, k->loc, "unknown attribute '%s' for %s%s", k->str, opname, h);
        else if (n == 3)
            diag_error(s->d, k->loc, "unknown attribute '%s' for %s (it has none)", k->str, opname);
        else {
            char list[160] = "";
            for (int j = op == OP_SPLIT ? 2 : 3; j < n; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         list[0] ? ", " : "", valid[j]);
            diag_error(s->d, k->loc, "unknown attribute '%s' for %s (attributes: %s)", k->str,
                       opname, list);
        }
    }
    return ok;
}

// A derived name for an unnamed node: "<last name>.<op>", else "<op>.<n>"; made unique.
static const char *derive_name(Spec *s, const char *op)
{
    Scope *sc = s->scope;
    char *base = sc->last_named ? xsprintf("%s%s.%s", sc->prefix, sc->last_named, op)
                                : xsprintf("%s%s.%d", sc->prefix, op, ++sc->n_unnamed);
    char *name = xstrdup(base);
    int k = 2;
    if (sc->last_base && strcmp(sc->last_base, base) == 0)
        k = sc->last_suffix + 1;
    while (table_get(&s->names, name)) {
        free(name);
        name = xsprintf("%s.%d", base, k++);
    }
    free(sc->last_base);
    sc->last_base = base;
    sc->last_suffix = k - 1;
    const char *r = arena_strdup(&s->tmp, name);
    free(name);
    return r;
}

// The full name for a `name:` given in the current scope, or NULL after an error.
static const char *scoped_name(Spec *s, const YNode *n, const char *what)
{
    const char *name = want_value_name(s, n, what);
    if (!name)
        return NULL;
    for (Scope *sc = s->scope; sc; sc = sc->up)
        if (sc->carry && strcmp(sc->carry, name) == 0) {
            diag_error(s->d, n->loc, "'%s' is the carried value of repeat '%s'; a body node "
                       "cannot take its name", name, sc->repeat);
            return NULL;
        }
    return arena_sprintf(&s->tmp, "%s%s", s->scope->prefix, name);
}

// Resolve `in:`.  Returns false if any input is unknown (reported) or failed (silent).
static bool read_inputs_list(Spec *s, const YNode *n, NodeId *in, int *n_in)
{
    char buf[64];
    *n_in = 0;
    if (n->kind != YN_SEQ) {
        diag_error(s->d, n->loc, "'in' must be a list of value names, found %s",
                   ynode_describe(n, buf, sizeof buf));
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n->n_items && i < KILN_MAX_IN; i++) {
        const char *name = want_string(s, n->items[i], "an input name");
        NodeId id = -1;
        if (!name) {
            ok = false;
            continue;
        }
        Look l = lookup_value(s, name, &id);
        if (l == LOOK_UNKNOWN)
            unknown_value(s, n->items[i]->loc, name, "unknown value");
        if (l != LOOK_OK)
            ok = false;
        in[(*n_in)++] = id;
    }
    return ok;
}

// Normalize an axis given as a whole number in [-rank, rank) (out-of-range axes pass
// through unchanged for shape inference to report).
static int norm_axis(int64_t axis, int rank)
{
    if (axis < 0 && axis >= -rank)
        axis += rank;
    return (int)axis;
}

// The text of a `tensor:` with every {EXPR} replaced by its whole-number value.
static const char *expand_tensor_text(Spec *s, const YNode *n)
{
    const char *src = want_string(s, n, "'tensor'");
    if (!src)
        return NULL;
    size_t len = 0, cap = strlen(src) + 64;
    char *out = xmalloc(cap);
    bool ok = true;
    for (const char *p = src; *p && ok;) {
        if (*p == '}') {
            diag_error(s->d, text_loc(n, (int)(p - src)), "'}' without '{' in a tensor name");
            ok = false;
            break;
        }
        if (*p != '{') {
            if (len + 2 > cap)
                out = xrealloc(out, cap *= 2);
            out[len++] = *p++;
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close) {
            diag_error(s->d, text_loc(n, (int)(p - src)), "'{' without '}' in a tensor name");
            ok = false;
            break;
        }
        char *inner = xmalloc((size_t)(close - p));
        memcpy(inner, p + 1, (size_t)(close - p - 1));
        inner[close - p - 1] = 0;
        ExprEnv env = spec_env(s);
        ExprError e;
        double v;
        if (!expr_eval(inner, &env, &v, &e)) {
            if (e.msg[0])
                diag_error(s->d, text_loc(n, (int)(p + 1 - src) + e.pos), "%s", e.msg);
            ok = false;
        } else if (!expr_is_whole(v)) {
            char val[40];
            expr_fmt(v, val, sizeof val);
            diag_error(s->d, text_loc(n, (int)(p + 1 - src)), "{%s} = %s is not a whole number",
                       inner, val);
            ok = false;
        } else {
            char num[40];
            expr_fmt(v, num, sizeof num);
            size_t nl = strlen(num);
            while (len + nl + 2 > cap)
                out = xrealloc(out, cap *= 2);
            memcpy(out + len, num, nl);
            len += nl;
        }
        free(inner);
        p = close + 1;
    }
    out[len] = 0;
    const char *r = ok ? arena_strdup(&s->g->arena, out) : NULL;
    free(out);
    return r;
}

// tensor: "h.{i}.attn.c_attn.weight" -> "h.3.attn.c_attn.weight" ({EXPR}: a whole number)
// Reading the index here does not count as iteration-dependent (index_used is restored):
// every iteration names its own tensor, and the node's errors are the same in each.
static const char *expand_tensor_name(Spec *s, const YNode *n)
{
    bool used[64];
    int n_used = 0;
    for (Scope *sc = s->scope; sc && n_used < 64; sc = sc->up)
        used[n_used++] = sc->index_used;
    const char *r = expand_tensor_text(s, n);
    n_used = 0;
    for (Scope *sc = s->scope; sc && n_used < 64; sc = sc->up)
        sc->index_used = used[n_used++];
    return r;
}

static const YNode *attr_of(const YNode *m, const char *key) { return ymap_get(m, key); }

// Read an optional boolean attribute.
static bool opt_bool(Spec *s, const YNode *m, const char *key, bool *out)
{
    const YNode *v = attr_of(m, key);
    char what[64];
    snprintf(what, sizeof what, "'%s'", key);
    return !v || read_bool(s, v, what, out);
}

// Report a missing required attribute at the node's op.
static const YNode *need_attr(Spec *s, const YNode *m, const char *key, const char *op, SrcLoc loc)
{
    const YNode *v = attr_of(m, key);
    if (!v)
        diag_error(s->d, loc, "%s needs '%s'", op, key);
    return v;
}

// Source ops: weight, constant, arange.
static NodeId build_source(Spec *s, const YNode *m, OpKind op, const char *name, SrcLoc loc)
{
    Graph *g = s->g;
    Node attr;
    memset(&attr, 0, sizeof attr);
    Type t = {.dtype = DT_F32};
    bool ok = true;
    const YNode *v;
    switch (op) {
    case OP_WEIGHT:
        if ((v = need_attr(s, m, "tensor", "weight", loc)))
            ok &= (attr.attr.weight.tensor = expand_tensor_name(s, v)) != NULL;
        else
            ok = false;
        if ((v = need_attr(s, m, "shape", "weight", loc)))
            ok &= read_shape(s, v, false, &t, NULL);
        else
            ok = false;
        if ((v = attr_of(m, "dtype"))) {
            ok &= read_dtype(s, v, &t.dtype);
            if (ok && t.dtype != DT_F32) {
                diag_error(s->d, v->loc, "weights are f32; %s is not supported", dtype_name(t.dtype));
                ok = false;
            }
        }
        break;
    case OP_CONST: {
        double val = 0;
        if ((v = attr_of(m, "dtype")))
            ok &= read_dtype(s, v, &t.dtype);
        if ((v = need_attr(s, m, "value", "constant", loc)))
            ok &= eval_num(s, v, "'value'", &val);
        else
            ok = false;
        if (!ok)
            break;
        t.rank = 0;
        void *data = arena_alloc(&g->arena, 8);
        if (t.dtype == DT_F32) {
            *(float *)data = (float)val;
        } else {
            double lim = t.dtype == DT_I32 ? 2147483647.0 : 9007199254740992.0;
            if (!expr_is_whole(val) || fabs(val) > lim) {
                char desc[320];
                describe_value(s, v, val, desc, sizeof desc);
                diag_error(s->d, v->loc, "%s is not a whole number that %s holds", desc,
                           dtype_name(t.dtype));
                ok = false;
                break;
            }
            if (t.dtype == DT_I32)
                *(int32_t *)data = (int32_t)val;
            else
                *(int64_t *)data = (int64_t)val;
        }
        attr.attr.constant.data = data;
        break;
    }
    case OP_ARANGE: {
        t.dtype = DT_I32;
        t.rank = 1;
        int64_t start = 0;
        if ((v = need_attr(s, m, "size", "arange", loc)))
            ok &= read_dim(s, v, false, &t.dim[0]);
        else
            ok = false;
        if ((v = attr_of(m, "start")) && v->kind == YN_SCALAR &&
            graph_find_sym(g, v->str) >= 0) {       // start at a symbolic dim's value
            attr.attr.arange.has_start_sym = true;
            attr.attr.arange.start_sym = graph_find_sym(g, v->str);
            if (!g->syms[attr.attr.arange.start_sym].position) {
                diag_error(s->d, v->loc, "arange: 'start' may name the state's position dim "
                           "only ('%s' is not; see state: position:)", v->str);
                ok = false;
            }
        } else if (v) {
            ok &= eval_int(s, v, "'start'", INT32_MIN, INT32_MAX, &start);
        }
        if (ok && start + t.dim[0].size - 1 > INT32_MAX) {
            diag_error(s->d, loc, "arange: start + size - 1 does not fit in i32");
            ok = false;
        }
        attr.attr.arange.start = start;
        break;
    }
    default:
        KILN_BUG("build_source: %s", op_name(op));
    }
    return ok ? graph_add_source(g, s->d, op, name, loc, t, &attr) : -1;
}

// reshape's -1: the one dimension that makes the element counts equal.  Symbolic dims
// cancel by symbol; what remains must be a static size or exactly one symbolic dim.
static bool infer_reshape_dim(Spec *s, const Type *x, Type *t, int k, const char *name,
                              SrcLoc loc)
{
    int count[MAX_SYMS] = {0};
    int64_t px = 1, pt = 1;
    for (int i = 0; i < x->rank; i++) {
        if (x->dim[i].sym >= 0 && x->dim[i].sym < MAX_SYMS)
            count[x->dim[i].sym]++;
        else
            px *= x->dim[i].size;
    }
    for (int i = 0; i < t->rank; i++) {
        if (i == k)
            continue;
        if (t->dim[i].sym >= 0)
            count[t->dim[i].sym]--;
        else
            pt *= t->dim[i].size;
    }
    int left = -1, n_left = 0;
    bool missing = false;
    for (int i = 0; i < MAX_SYMS; i++) {
        if (count[i] > 0) {
            left = i;
            n_left += count[i];
        }
        missing |= count[i] < 0;
    }
    char sx[256], st[256];
    const char *why = NULL;
    if (missing)
        why = "the new shape has a symbolic dim the input lacks";
    else if (n_left > 1)
        why = "it would be a product of symbolic dims";
    else if (n_left == 1 && px != pt)
        why = "it would be a multiple of a symbolic dim";
    else if (n_left == 0 && px % pt != 0)
        why = "the other dims do not divide the element count";
    if (why) {
        t->dim[k] = (Dim){-1, -1};
        diag_error(s->d, loc, "reshape '%s': cannot infer -1 in %s from %s: %s", name,
                   shape_str(s->g, t, st, sizeof st), shape_str(s->g, x, sx, sizeof sx), why);
        return false;
    }
    t->dim[k] = n_left ? (Dim){s->g->syms[left].max, left} : (Dim){px / pt, -1};
    return true;
}

// Ops with inputs: parse attributes, given the inputs' types, then construct.
static NodeId build_op(Spec *s, const YNode *m, OpKind op, const char *name, SrcLoc loc,
                       const NodeId *in, int n_in)
{
    Graph *g = s->g;
    Node attr;
    memset(&attr, 0, sizeof attr);
    const Type *x = n_in > 0 ? &graph_node(g, in[0])->type : NULL;
    const char *opn = op_info[op].name;
    char sx[256];
    bool ok = true;
    const YNode *v;
    int64_t n64;
    switch (op) {
    case OP_SCALE: {
        double by = 0;
        ok = (v = need_attr(s, m, "by", opn, loc)) && eval_num(s, v, "'by'", &by);
        attr.attr.scale.by = by;
        break;
    }
    case OP_GELU:
        if ((v = attr_of(m, "approximate"))) {
            const char *a = want_string(s, v, "'approximate'");
            if (a && strcmp(a, "tanh") == 0)
                attr.attr.gelu.tanh = true;
            else if (a && strcmp(a, "none") != 0) {
                diag_error(s->d, v->loc, "'approximate' must be none or tanh, found '%s'", a);
                ok = false;
            } else if (!a)
                ok = false;
        }
        break;
    case OP_CAUSAL_MASK:
        if ((v = attr_of(m, "offset"))) {     // query i sees keys j <= i + offset
            int sym = v->kind == YN_SCALAR ? graph_find_sym(g, v->str) : -1;
            if (sym < 0 || !g->syms[sym].position) {
                diag_error(s->d, v->loc, "causal_mask: 'offset' must name the state's position "
                           "dim (state: position:), found %s", ynode_describe(v, sx, sizeof sx));
                ok = false;
            } else {
                attr.attr.causal.has_offset = true;
                attr.attr.causal.offset_sym = sym;
            }
        }
        break;
    case OP_CACHE_WRITE:
        if (g->position_sym < 0) {
            diag_error(s->d, loc, "cache_write '%s': the spec declares no position (state: "
                       "position: DIM), so there is nowhere to write", name);
            return -1;
        }
        ok = (v = need_attr(s, m, "index", opn, loc)) &&
             eval_int(s, v, "'index'", 0, INT32_MAX, &n64);
        attr.attr.cache_write.index = ok ? n64 : 0;
        attr.attr.cache_write.at_sym = g->position_sym;
        break;
    case OP_CAST: {
        DType to = DT_F32;
        ok = (v = need_attr(s, m, "dtype", opn, loc)) && read_dtype(s, v, &to);
        attr.attr.cast.to = to;
        break;
    }
    case OP_MATMUL:
        ok &= opt_bool(s, m, "transpose_a", &attr.attr.matmul.trans_a);
        ok &= opt_bool(s, m, "transpose_b", &attr.attr.matmul.trans_b);
        break;
    case OP_SOFTMAX:
        if ((v = attr_of(m, "axis")) && (ok = eval_int(s, v, "an axis", -MAX_AXIS, MAX_AXIS,
                                                       &n64))) {
            int ax = norm_axis(n64, x->rank);
            if (ax != x->rank - 1) {
                diag_error(s->d, v->loc, "softmax '%s': axis %lld of %s is not the last axis; "
                           "softmax runs along the last axis only (transpose first)", name,
                           (long long)n64, shape_str(g, x, sx, sizeof sx));
                ok = false;
            }
        }
        break;
    case OP_LAYER_NORM: {
        double eps = 1e-5;
        if ((v = attr_of(m, "eps")))
            ok = eval_num(s, v, "'eps'", &eps);
        attr.attr.layer_norm.eps = eps;
        break;
    }
    case OP_RESHAPE: {
        Type t = {0};
        int infer = -1;
        ok = (v = need_attr(s, m, "shape", opn, loc)) && read_shape(s, v, true, &t, &infer);
        if (ok && infer >= 0)
            ok = infer_reshape_dim(s, x, &t, infer, name, loc);
        attr.attr.reshape.rank = t.rank;
        memcpy(attr.attr.reshape.dim, t.dim, sizeof t.dim);
        break;
    }
    case OP_TRANSPOSE:
        if (!(v = need_attr(s, m, "perm", opn, loc)))
            return -1;
        if (v->kind != YN_SEQ) {
            diag_error(s->d, v->loc, "'perm' must be a list of axes, found %s",
                       ynode_describe(v, sx, sizeof sx));
            return -1;
        }
        if (v->n_items != x->rank) {
            diag_error(s->d, v->loc, "transpose '%s': perm has %d axes, but the input is %s "
                       "(rank %d)", name, v->n_items, shape_str(g, x, sx, sizeof sx), x->rank);
            return -1;
        }
        for (int k = 0; k < v->n_items; k++) {
            if (eval_int(s, v->items[k], "an axis", -MAX_AXIS, MAX_AXIS, &n64))
                attr.attr.transpose.perm[k] = norm_axis(n64, x->rank);
            else
                ok = false;
        }
        break;
    case OP_SLICE: {
        int64_t axis = 0, start = 0, end = 0;
        if (!(v = need_attr(s, m, "axis", opn, loc)) ||
            !eval_int(s, v, "an axis", -MAX_AXIS, MAX_AXIS, &axis))
            return -1;
        int ax = norm_axis(axis, x->rank);
        bool in_range = ax >= 0 && ax < x->rank;
        Dim dm = in_range ? x->dim[ax] : (Dim){0, -1};
        if ((v = attr_of(m, "start")))
            ok &= eval_int(s, v, "a slice bound", -MAX_DIM, MAX_DIM, &start);
        if ((v = attr_of(m, "end"))) {
            ok &= eval_int(s, v, "a slice bound", -MAX_DIM, MAX_DIM, &end);
        } else if (in_range && dm.sym >= 0) {
            diag_error(s->d, loc, "slice '%s': 'end' is needed on symbolic axis %d ('%s')", name,
                       ax, g->syms[dm.sym].name);
            ok = false;
        } else {
            end = dm.size;
        }
        if (in_range && dm.sym < 0) {   // negative bounds count from the end
            if (start < 0)
                start += dm.size;
            if (end < 0)
                end += dm.size;
        }
        attr.attr.slice.axis = ax;
        attr.attr.slice.start = start;
        attr.attr.slice.end = end;
        break;
    }
    case OP_CONCAT:
        if (!(v = need_attr(s, m, "axis", opn, loc)) ||
            !eval_int(s, v, "an axis", -MAX_AXIS, MAX_AXIS, &n64))
            return -1;
        attr.attr.concat.axis = norm_axis(n64, x->rank);
        break;
    default:
        break;      // no attributes
    }
    return ok ? graph_add_node(g, s->d, op, name, loc, in, n_in, &attr) : -1;
}

// The node budget: once exceeded, report once and stop walking.
static bool budget_ok(Spec *s, SrcLoc loc)
{
    if (s->g->n_nodes < MAX_NODES && s->n_iterations <= MAX_ITERATIONS)
        return true;
    if (!s->aborted)
        diag_error(s->real, loc, "the graph is too large (more than %d nodes or %d repeat "
                   "iterations)", MAX_NODES, MAX_ITERATIONS);
    s->aborted = true;
    return false;
}

// split: { op: split, in: [x], axis: A, parts: N | sizes: [..], names: [n1, ..] }
// Expands into one slice per part, named by `names`.
static void read_split(Spec *s, const YNode *m, SrcLoc loc)
{
    Graph *g = s->g;
    char buf[64];
    const YNode *names = attr_of(m, "names");
    const char *full[KILN_MAX_IN * 4];     // the parts' full names
    SrcLoc full_loc[KILN_MAX_IN * 4];      // and where `names:` gives each
    int n_names = 0;
    bool ok = true;

    if (!names) {
        diag_error(s->d, loc, "split needs 'names' (one per part)");
        ok = false;
    } else if (names->kind != YN_SEQ || names->n_items == 0) {
        diag_error(s->d, names->loc, "'names' must be a list of names, found %s",
                   ynode_describe(names, buf, sizeof buf));
        ok = false;
    } else if (names->n_items > (int)(sizeof full / sizeof full[0])) {
        diag_error(s->d, names->loc, "split makes at most %d parts",
                   (int)(sizeof full / sizeof full[0]));
        ok = false;
    } else {
        for (int i = 0; i < names->n_items; i++) {
            const char *f = scoped_name(s, names->items[i], "a part name");
            if (!f) {
                ok = false;
                continue;
            }
            if (table_get(&s->names, f)) {
                define_name(s, f, -1, names->items[i]->loc);    // reports the duplicate
                ok = false;
                continue;
            }
            full_loc[n_names] = names->items[i]->loc;
            full[n_names++] = f;
            s->scope->last_named = names->items[i]->str;
        }
    }
    if (!check_node_keys(s, m, OP_SPLIT))
        ok = false;

    NodeId in[KILN_MAX_IN];
    int n_in = 0;
    const YNode *inl = attr_of(m, "in");
    if (!inl) {
        diag_error(s->d, loc, "split takes 1 input, found 0");
        ok = false;
    } else if (inl->kind == YN_SEQ && inl->n_items != 1) {
        diag_error(s->d, loc, "split takes 1 input, found %d", inl->n_items);
        ok = false;
    } else if (!read_inputs_list(s, inl, in, &n_in)) {
        ok = false;
    }

    // Sizes of the parts along the axis.
    int64_t sizes[sizeof full / sizeof full[0]];
    int ax = 0;
    if (ok) {
        const Type *x = &graph_node(g, in[0])->type;
        int64_t axis = -1;
        const YNode *v = attr_of(m, "axis");
        if (v && !eval_int(s, v, "an axis", -MAX_AXIS, MAX_AXIS, &axis))
            ok = false;
        ax = norm_axis(axis, x->rank);
        char sx[256];
        if (ok && (ax < 0 || ax >= x->rank)) {
            diag_error(s->d, v ? v->loc : loc, "split: axis %lld is outside the %d axes of %s",
                       (long long)axis, x->rank, shape_str(g, x, sx, sizeof sx));
            ok = false;
        } else if (ok && x->dim[ax].sym >= 0) {
            diag_error(s->d, loc, "split: axis %d of %s is symbolic; split needs a static size",
                       ax, shape_str(g, x, sx, sizeof sx));
            ok = false;
        }
        const YNode *parts = attr_of(m, "parts"), *sz = attr_of(m, "sizes");
        if (ok && parts && sz) {
            diag_error(s->d, sz->loc, "split takes 'parts' or 'sizes', not both");
            ok = false;
        }
        if (ok && sz) {
            if (sz->kind != YN_SEQ || sz->n_items != n_names) {
                diag_error(s->d, sz->loc, "'sizes' must be a list of %d sizes (one per name), "
                           "found %s", n_names, sz->kind == YN_SEQ ? "a list of another length"
                           : ynode_describe(sz, buf, sizeof buf));
                ok = false;
            }
            int64_t total = 0;
            for (int i = 0; ok && i < n_names; i++) {
                ok = eval_int(s, sz->items[i], "a part size", 1, MAX_DIM, &sizes[i]);
                total += ok ? sizes[i] : 0;
            }
            if (ok && total != x->dim[ax].size) {
                diag_error(s->d, sz->loc, "split: sizes add up to %lld, but axis %d of %s has "
                           "%lld", (long long)total, ax, shape_str(g, x, sx, sizeof sx),
                           (long long)x->dim[ax].size);
                ok = false;
            }
        } else if (ok) {
            int64_t np = n_names;
            if (parts && !eval_int(s, parts, "'parts'", 1, 1024, &np))
                ok = false;
            else if (np != n_names) {
                diag_error(s->d, names->loc, "split into %lld parts needs %lld names, found %d",
                           (long long)np, (long long)np, n_names);
                ok = false;
            } else if (x->dim[ax].size % np != 0) {
                diag_error(s->d, parts ? parts->loc : loc, "split: axis %d of %s (size %lld) "
                           "does not divide into %lld equal parts", ax,
                           shape_str(g, x, sx, sizeof sx), (long long)x->dim[ax].size,
                           (long long)np);
                ok = false;
            }
            for (int i = 0; ok && i < n_names; i++)
                sizes[i] = x->dim[ax].size / np;
        }
    }

    int64_t start = 0;
    for (int i = 0; i < n_names; i++) {
        NodeId id = -1;
        if (ok && budget_ok(s, loc)) {
            Node attr;
            memset(&attr, 0, sizeof attr);
            attr.attr.slice.axis = ax;
            attr.attr.slice.start = start;
            attr.attr.slice.end = start + sizes[i];
            start += sizes[i];
            id = graph_add_node(g, s->d, OP_SLICE, full[i], loc, in, 1, &attr);
            tag_block(s, id);
            ok = id >= 0;
        }
        table_put(s, full[i], id, full_loc[i]);
    }
}

// Can a spec name this op?  Not `input` (that is what `inputs:` declares), nor ops that only
// passes make (fused ones).
static bool spec_can_name(int op)
{
    if (op == OP_INPUT || op == OP_STATE)
        return false;
    switch (op_info[op].cls) {
    case OPC_SOURCE:
    case OPC_ELEMWISE:
    case OPC_CONTRACT:
    case OPC_REDUCE:
    case OPC_VIEW:
    case OPC_LAYOUT:
        return true;
    default:
        return false;
    }
}

// "unknown op 'softmx'; did you mean 'softmax'?" over the ops a spec can name and `split`.
static void unknown_op(Spec *s, const YNode *opv)
{
    Closest c = closest_init(opv->str);
    for (int i = 0; i < OP_COUNT; i++)
        if (spec_can_name(i))
            closest_try(&c, op_info[i].name);
    closest_try(&c, "split");
    char hint[160];
    diag_error(s->d, opv->loc, "unknown op '%s'%s", opv->str, closest_hint(&c, hint, sizeof hint));
}


// "matmul takes 2 inputs, found 3" (the wording of graph_add_node, which checks again).
static bool check_arity(Spec *s, OpKind op, int n_in, SrcLoc loc)
{
    const OpInfo *info = &op_info[op];
    if (n_in >= info->min_in && n_in <= info->max_in)
        return true;
    if (info->min_in == info->max_in)
        diag_error(s->d, loc, "%s takes %d input%s, found %d", info->name, info->min_in,
                   info->min_in == 1 ? "" : "s", n_in);
    else
        diag_error(s->d, loc, "%s takes %d to %d inputs, found %d", info->name, info->min_in,
                   info->max_in, n_in);
    return false;
}

// node = { op: OPNAME, name: NAME, in: [VALUE, ...], ATTRIBUTE: VALUE, ... }
static void read_node(Spec *s, const YNode *m)
{
    char buf[64];
    static const char *const base_keys[] = {"op", "name", "in"};
    const YNode *opv = get_key(m, "op", base_keys, 3);
    SrcLoc loc = opv ? opv->loc : m->loc;

    if (opv && opv->kind == YN_SCALAR && strcmp(opv->str, "split") == 0) {
        read_split(s, m, loc);
        return;
    }
    int op = -1;
    if (!opv) {
        diag_error(s->d, m->loc, "missing required key 'op'");
    } else if (opv->kind != YN_SCALAR || !opv->str[0]) {
        diag_error(s->d, opv->loc, "'op' must be an op name, found %s",
                   ynode_describe(opv, buf, sizeof buf));
    } else if ((op = op_lookup(opv->str)) == OP_INPUT) {
        diag_error(s->d, opv->loc, "model inputs are declared under 'inputs:', not in the graph");
        op = -1;
    } else if (op == OP_STATE) {
        diag_error(s->d, opv->loc, "states are declared under 'state:', not in the graph");
        op = -1;
    } else if (op < 0 || !spec_can_name(op)) {
        unknown_op(s, opv);
        op = -1;
    }
    const char *valid[8];
    int n_valid = op >= 0 ? node_keys(op, valid) : 3;
    if (op < 0)
        memcpy(valid, base_keys, sizeof base_keys);
    const YNode *namev = get_key(m, "name", valid, n_valid);

    // The name: whatever happens next, it must end up defined (as failed, if need be).
    const char *full = NULL;
    if (namev) {
        full = scoped_name(s, namev, "a node name");
        if (full && table_get(&s->names, full)) {
            define_name(s, full, -1, namev->loc);   // reports the duplicate
            full = NULL;
            op = -1;
        }
        if (namev->kind == YN_SCALAR)
            s->scope->last_named = namev->str;
    } else if (op >= 0) {
        full = derive_name(s, op_info[op].name);
    }
    SrcLoc name_loc = namev ? namev->loc : loc;

    NodeId id = -1;
    if (op >= 0 && full && budget_ok(s, loc)) {
        bool ok = check_node_keys(s, m, op);
        if (op_info[op].cls == OPC_SOURCE) {
            if (ok)
                id = build_source(s, m, op, full, loc);
            tag_block(s, id);
        } else {
            const YNode *inl = get_key(m, "in", valid, n_valid);
            NodeId in[KILN_MAX_IN];
            int n_in = 0;
            int count = inl && inl->kind == YN_SEQ ? inl->n_items : 0;
            if (inl && inl->kind != YN_SEQ) {
                diag_error(s->d, inl->loc, "'in' must be a list of value names, found %s",
                           ynode_describe(inl, buf, sizeof buf));
                ok = false;
            } else if (!check_arity(s, (OpKind)op, count, loc)) {
                ok = false;
            } else if (inl && !read_inputs_list(s, inl, in, &n_in)) {
                ok = false;
            }
            if (ok)
                id = build_op(s, m, (OpKind)op, full, loc, in, n_in);
            tag_block(s, id);
        }
    }
    if (full)
        table_put(s, full, id, name_loc);
}

/* =======================================================================================
 * The graph list and repeat blocks
 */

static void read_item(Spec *s, const YNode *item);

// Run item k of a repeat body in iteration sc->iter.  An item that failed in an earlier
// iteration runs muted (its names still get defined); a new failure after iteration 0, or
// one that read the index, gets a note naming the iteration.
static void run_body_item(Spec *s, Scope *sc, const YNode *item, bool *failed_before)
{
    Diag *saved = s->d;
    if (*failed_before)
        s->d = &s->mute;
    int before = diag_count(s->d);
    sc->index_used = false;
    read_item(s, item);
    bool failed = diag_count(s->d) > before;
    s->d = saved;
    if (failed && !*failed_before) {
        *failed_before = true;
        if (sc->iter > 0 || sc->index_used)
            diag_note(s->d, sc->repeat_loc, "in iteration %d of repeat '%s'", sc->iter,
                      sc->repeat);
    }
}

// repeat = { repeat: NAME, count: EXPR, index: NAME, carry: { NAME: VALUE }, yield: NAME,
//            body: [ item, ... ] }
static void read_repeat(Spec *s, const YNode *m)
{
    static const char *const keys[] = {"repeat", "count", "index", "carry", "yield", "body"};
    char buf[64];
    const YNode *rv = ymap_get(m, "repeat");
    SrcLoc loc = rv->loc;
    bool ok = check_keys(s, m, keys, 6, "a repeat block");

    const char *name = want_value_name(s, rv, "a repeat name");
    const char *full = name ? arena_sprintf(&s->tmp, "%s%s", s->scope->prefix, name) : NULL;
    if (full && table_get(&s->names, full)) {
        define_name(s, full, -1, loc);      // reports the duplicate
        return;
    }
    ok &= name != NULL;

    int64_t count = 0;
    const YNode *cv = get_key(m, "count", keys, 6);
    if (!cv) {
        diag_error(s->d, loc, "repeat '%s' needs 'count'", name ? name : "?");
        ok = false;
    } else {
        ok &= eval_int(s, cv, "a repeat count", 1, MAX_ITERATIONS, &count);
    }

    const char *index = NULL;
    const YNode *iv = get_key(m, "index", keys, 6);
    if (iv && (index = want_identifier(s, iv, "a repeat index"))) {
        bool clash = find_param(s, index) >= 0 || graph_find_sym(s->g, index) >= 0;
        for (Scope *sc = s->scope; sc; sc = sc->up)
            clash |= sc->index && strcmp(sc->index, index) == 0;
        if (clash) {
            diag_error(s->d, iv->loc, "repeat index '%s' hides a parameter, dim or outer index "
                       "of the same name", index);
            index = NULL;
        }
    }
    if (iv && !index)
        ok = false;

    const char *carry = NULL;
    NodeId carry_id = -1;
    SrcLoc carry_loc = loc;
    const YNode *carv = get_key(m, "carry", keys, 6);
    if (carv) {
        if (carv->kind != YN_MAP || carv->n_pairs != 1) {
            diag_error(s->d, carv->loc, "'carry' must be one pair { body-name: initial-value }, "
                       "found %s", carv->kind == YN_MAP ? "another number of pairs"
                       : ynode_describe(carv, buf, sizeof buf));
            ok = false;
        } else {
            const YPair *p = &carv->pairs[0];
            carry = want_value_name(s, p->key, "a carried name");
            const char *init = want_string(s, p->val, "a carried value");
            carry_loc = p->key->loc;
            Look l = LOOK_FAILED;
            if (init && (l = lookup_value(s, init, &carry_id)) == LOOK_UNKNOWN)
                unknown_value(s, p->val->loc, init, "unknown value");
            // A failed initial value is carried as failed: the body then fails silently.
            ok &= carry && init && l != LOOK_UNKNOWN;
        }
    }

    const char *yield = NULL;
    const YNode *yv = get_key(m, "yield", keys, 6);
    if (yv)
        ok &= (yield = want_value_name(s, yv, "'yield'")) != NULL;
    else if (carv) {
        diag_error(s->d, carv->loc, "a repeat with 'carry' needs 'yield' (the next iteration's "
                   "value)");
        ok = false;
    }

    const YNode *body = get_key(m, "body", keys, 6);
    if (!body) {
        diag_error(s->d, loc, "repeat '%s' needs 'body'", name ? name : "?");
        ok = false;
    } else if (body->kind != YN_SEQ) {
        diag_error(s->d, body->loc, "'body' must be a list of nodes, found %s",
                   ynode_describe(body, buf, sizeof buf));
        ok = false;
    }
    if (!ok) {
        if (full)
            table_put(s, full, -1, loc);
        return;
    }

    bool *failed = xcalloc((size_t)body->n_items + 1, sizeof *failed);
    bool yield_failed = false;
    for (int it = 0; it < count && !s->aborted; it++) {
        s->n_iterations++;
        if (!budget_ok(s, loc))
            break;
        Scope sc = {
            .up = s->scope,
            .prefix = arena_sprintf(&s->tmp, "%s%s.%d.", s->scope->prefix, name, it),
            .block = arena_sprintf(&s->g->arena, "%s%s.%d", s->scope->prefix, name, it),
            .repeat = name, .repeat_loc = loc, .iter = it, .index = index,
            .carry = carry, .carry_id = carry_id, .carry_loc = carry_loc,
        };
        s->scope = &sc;
        for (int k = 0; k < body->n_items && !s->aborted; k++)
            run_body_item(s, &sc, body->items[k], &failed[k]);
        free(sc.last_base);
        if (yield) {
            Look l = lookup_value(s, yield, &carry_id);
            if (l == LOOK_UNKNOWN && !yield_failed)
                unknown_value(s, yv->loc, yield, "'yield' names an unknown value");
            if (l != LOOK_OK) {
                yield_failed = true;
                carry_id = -1;
            }
        }
        s->scope = sc.up;
    }
    free(failed);
    if (yield)
        table_put(s, full, s->aborted ? -1 : carry_id, loc);
}

// item = node | repeat
static void read_item(Spec *s, const YNode *item)
{
    char buf[64];
    if (!s->aborted && diag_count(s->real) >= MAX_ERRORS) {
        diag_error(s->real, item->loc, "too many errors (%d); stopping here", MAX_ERRORS);
        s->aborted = true;
    }
    if (s->aborted)
        return;
    if (item->kind != YN_MAP) {
        diag_error(s->d, item->loc, "a graph entry must be a node ({ op: ... }) or a repeat "
                   "block, found %s", ynode_describe(item, buf, sizeof buf));
        return;
    }
    if (ymap_get(item, "repeat"))
        read_repeat(s, item);
    else
        read_node(s, item);
}

/* =======================================================================================
 * Outputs and the spec as a whole
 */

// outputs: { NAME: VALUE, ... }
static void read_outputs(Spec *s, const YNode *m)
{
    char buf[64];
    if (m->kind != YN_MAP || m->n_pairs == 0) {
        diag_error(s->d, m->loc, "outputs must be a mapping of output names to values, found %s",
                   m->kind == YN_MAP ? "an empty one" : ynode_describe(m, buf, sizeof buf));
        return;
    }
    for (int i = 0; i < m->n_pairs; i++) {
        const YPair *p = &m->pairs[i];
        const char *name = want_identifier(s, p->key, "output name");
        const char *value = want_string(s, p->val, "an output's value");
        if (!name || !value)
            continue;
        NodeId id = -1;
        Look l = lookup_value(s, value, &id);
        if (l == LOOK_UNKNOWN)
            unknown_value(s, p->val->loc, value, "unknown value");
        if (l != LOOK_OK)
            continue;
        Output o = {arena_strdup(&s->g->arena, name), id, p->key->loc};
        VEC_PUSH(s->g->outputs, s->g->n_outputs, s->g->cap_outputs, o);
    }
}

// state: { position: DIM, NAME: { shape: SHAPE }, ... }
// Tensors the model keeps across forward calls (f32, zero when the model is opened), usable
// as values by name, and the symbolic dim that counts the tokens they hold: the runtime binds
// it (0 for a fresh state) instead of an input's shape.
static void read_state(Spec *s, const YNode *m)
{
    static const char *const keys[] = {"shape"};
    Graph *g = s->g;
    char buf[64];
    if (m->kind != YN_MAP) {
        diag_error(s->d, m->loc, "state must be a mapping of names to { shape } (and position: "
                   "DIM), found %s", ynode_describe(m, buf, sizeof buf));
        return;
    }
    for (int i = 0; i < m->n_pairs; i++) {
        const YPair *p = &m->pairs[i];
        if (is_position_key(p->key)) {
            const char *dim = want_string(s, p->val, "the position");
            int sym = dim ? graph_find_sym(g, dim) : -1;
            if (dim && sym < 0)
                diag_error(s->d, p->val->loc, "state: position must name a dim declared under "
                           "'dims:', found '%s'", dim);
            else if (sym >= 0 && g->position_sym >= 0)
                diag_error(s->d, p->key->loc, "state: a second position");
            else if (sym >= 0) {
                g->position_sym = sym;
                g->syms[sym].position = true;
            }
            continue;
        }
        const char *name = want_identifier(s, p->key, "state name");
        if (!name)
            continue;
        const YNode *v = p->val;
        NodeId id = -1;
        Type t = {.dtype = DT_F32};
        const YNode *sh;
        if (v->kind != YN_MAP) {
            diag_error(s->d, v->loc, "state '%s' must be a mapping { shape }, found %s", name,
                       ynode_describe(v, buf, sizeof buf));
        } else if (check_keys(s, v, keys, 1, "a state") &&
                   (sh = get_key(v, "shape", keys, 1)) != NULL && read_shape(s, sh, false, &t, NULL)) {
            Node attr = {.attr.state.index = g->n_states};
            id = graph_add_source(g, s->d, OP_STATE, name, p->key->loc, t, &attr);
            if (id >= 0)
                VEC_PUSH(g->states, g->n_states, g->cap_states, id);
        } else if (v->kind == YN_MAP && !get_key(v, "shape", keys, 1)) {
            diag_error(s->d, v->loc, "state '%s' has no 'shape'", name);
        }
        define_name(s, name, id, p->key->loc);
    }
    if (g->n_states && g->position_sym < 0)
        diag_error(s->d, m->loc, "state: the states need a position (position: DIM, the dim "
                   "that counts the tokens they hold)");
    for (int i = 0; g->position_sym >= 0 && i < g->n_inputs; i++) {
        const Node *in = &g->nodes[g->inputs[i]];
        for (int k = 0; k < in->type.rank; k++)
            if (in->type.dim[k].sym == g->position_sym) {
                diag_error(s->d, in->loc, "input '%s': dim '%s' is the state's position, which "
                           "the runtime sets; an input's shape cannot use it", in->name,
                           g->syms[g->position_sym].name);
                return;
            }
    }
}

// One role of `text:`: the name of an input (outputs false) or an output, or -1 after an
// error.
static int text_role(Spec *s, const YNode *n, const char *role, bool outputs)
{
    const char *name = want_string(s, n, role);
    if (!name)
        return -1;
    Graph *g = s->g;
    int count = outputs ? g->n_outputs : g->n_inputs;
    for (int i = 0; i < count; i++)
        if (strcmp(outputs ? g->outputs[i].name : g->nodes[g->inputs[i]].name, name) == 0)
            return i;
    diag_error(s->d, n->loc, "text: %s names '%s', which is not one of the spec's %s", role,
               name, outputs ? "outputs" : "inputs");
    return -1;
}

// Whether type t has the dtype and rank a text role needs, and starts with the ids' dims.
static bool text_type(Spec *s, const YNode *n, const char *role, const Type *t, DType dt,
                      int rank, const Type *ids)
{
    bool ok = t->dtype == dt && t->rank == rank;
    for (int k = 0; ok && ids && k < 2; k++)
        ok = t->dim[k].sym == ids->dim[k].sym && t->dim[k].size == ids->dim[k].size;
    if (!ok)
        diag_error(s->d, n->loc, "text: %s must be %s of rank %d%s", role, dtype_name(dt), rank,
                   ids ? " whose first two dims are the ids' [batch, seq]" : " ([batch, seq])");
    return ok;
}

// text: { ids: INPUT, mask: INPUT, types: INPUT, logits: OUTPUT, hidden: OUTPUT }
// The tensors the binary's text front ends use (docs/spec.md): ids (i32 [batch, seq], filled
// by the tokenizer) and at least one of logits (f32 [batch, seq, vocab]: generation,
// fill-mask) and hidden (f32 [batch, seq, width]: --embed); mask (1 for tokens, 0 for
// padding) and types (all 0) when the model takes them.  Every input must have a role.
static void read_text(Spec *s, const YNode *m)
{
    static const char *const keys[] = {"ids", "mask", "types", "logits", "hidden"};
    Graph *g = s->g;
    char buf[64];
    if (m->kind != YN_MAP) {
        diag_error(s->d, m->loc, "text must be a mapping of roles (ids, mask, types, logits, "
                   "hidden) to input and output names, found %s",
                   ynode_describe(m, buf, sizeof buf));
        return;
    }
    if (!check_keys(s, m, keys, 5, "text"))
        return;
    g->text.loc = m->loc;
    g->text.ids = g->text.mask = g->text.types = g->text.logits = g->text.hidden = -1;
    const YNode *v;
    bool ok = true;
    const Type *ids = NULL;
    if (!(v = get_key(m, "ids", keys, 5))) {
        diag_error(s->d, m->loc, "text: missing 'ids' (the i32 [batch, seq] input of token ids)");
        return;
    }
    if ((g->text.ids = text_role(s, v, "ids", false)) < 0)
        return;
    ids = &g->nodes[g->inputs[g->text.ids]].type;
    if (!text_type(s, v, "ids", ids, DT_I32, 2, NULL))
        return;
    static const char *const in_roles[] = {"mask", "types"};
    int *in_slot[] = {&g->text.mask, &g->text.types};
    for (int r = 0; r < 2; r++)
        if ((v = get_key(m, in_roles[r], keys, 5))) {
            *in_slot[r] = text_role(s, v, in_roles[r], false);
            ok &= *in_slot[r] >= 0 &&
                  text_type(s, v, in_roles[r], &g->nodes[g->inputs[*in_slot[r]]].type, DT_I32,
                            2, ids);
        }
    static const char *const out_roles[] = {"logits", "hidden"};
    int *out_slot[] = {&g->text.logits, &g->text.hidden};
    for (int r = 0; r < 2; r++)
        if ((v = get_key(m, out_roles[r], keys, 5))) {
            *out_slot[r] = text_role(s, v, out_roles[r], true);
            ok &= *out_slot[r] >= 0 &&
                  text_type(s, v, out_roles[r], &g->nodes[g->outputs[*out_slot[r]].node].type,
                            DT_F32, 3, ids);
        }
    if (!ok)
        return;
    if (g->text.logits < 0 && g->text.hidden < 0) {
        diag_error(s->d, m->loc, "text: needs 'logits' (generation, fill-mask) or 'hidden' "
                   "(--embed), or both");
        return;
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (i != g->text.ids && i != g->text.mask && i != g->text.types) {
            diag_error(s->d, m->loc, "text: input '%s' has no role (ids, mask or types), so the "
                       "text front ends could not fill it", g->nodes[g->inputs[i]].name);
            return;
        }
    g->text.present = true;
}

static void read_spec(Spec *s, const YNode *root, const SpecDefine *defs, int n_defs)
{
    static const char *const keys[] = {"kiln", "name", "params", "dims", "weight_prefixes",
                                       "inputs", "state", "graph", "outputs", "text"};
    static const char *const required[] = {"kiln", "name", "inputs", "graph", "outputs"};
    char buf[64];
    if (root->kind != YN_MAP) {
        diag_error(s->d, root->loc, "a spec is a mapping with keys kiln, name, inputs, graph, "
                   "outputs, ...; found %s", ynode_describe(root, buf, sizeof buf));
        return;
    }
    check_keys(s, root, keys, 10, "the spec");
    for (int i = 0; i < 5; i++)
        if (!get_key(root, required[i], keys, 10))
            diag_error(s->d, root->loc, "missing required key '%s'", required[i]);

    const YNode *v;
    if ((v = get_key(root, "kiln", keys, 10))) {
        int64_t version;
        if (eval_int(s, v, "'kiln'", INT32_MIN, INT32_MAX, &version) && version != 1)
            diag_error(s->d, v->loc, "this kiln reads spec language version 1, not %lld",
                       (long long)version);
    }
    const char *name;
    if ((v = get_key(root, "name", keys, 10)) && (name = want_identifier(s, v, "the model name")))
        s->g->model_name = arena_strdup(&s->g->arena, name);

    read_params(s, get_pair(root, "params", keys, 10), defs, n_defs);
    if ((v = get_key(root, "dims", keys, 10))) {
        // The state's position is declared under state:, after dims:; look it up first.
        const YNode *st = get_key(root, "state", keys, 10), *pos = NULL;
        for (int i = 0; st && st->kind == YN_MAP && i < st->n_pairs; i++)
            if (is_position_key(st->pairs[i].key))
                pos = st->pairs[i].val;
        read_dims(s, v, pos && pos->kind == YN_SCALAR ? pos->str : NULL);
    }
    if ((v = get_key(root, "weight_prefixes", keys, 10)))
        read_weight_prefixes(s, v);
    if ((v = get_key(root, "inputs", keys, 10)))
        read_inputs(s, v);
    if ((v = get_key(root, "state", keys, 10)))
        read_state(s, v);
    if ((v = get_key(root, "graph", keys, 10))) {
        if (v->kind != YN_SEQ)
            diag_error(s->d, v->loc, "graph must be a list of nodes, found %s",
                       ynode_describe(v, buf, sizeof buf));
        else
            for (int i = 0; i < v->n_items && !s->aborted; i++)
                read_item(s, v->items[i]);
    }
    if ((v = get_key(root, "outputs", keys, 10)) && !s->aborted)
        read_outputs(s, v);
    if ((v = get_key(root, "text", keys, 10)) && !s->aborted && diag_count(s->real) == 0)
        read_text(s, v);
}

Graph *spec_load(const char *path, const SpecDefine *defs, int n_defs, Diag *d)
{
    Graph *g = graph_new(path);
    Scope top = {.prefix = ""};
    Spec s = {.g = g, .d = d, .real = d, .file = g->spec_path, .scope = &top};
    // Repeated messages go nowhere; without /dev/null they are simply not muted.
    diag_init(&s.mute);
    s.mute.quiet_source = true;
    s.mute.out = fopen("/dev/null", "w");
    if (!s.mute.out)
        s.mute = *d;

    int before = diag_count(d);
    YNode *root = yaml_read_file(path, g->spec_path, &s.tmp, d);
    if (root)
        read_spec(&s, root, defs, n_defs);

    if (s.mute.out && s.mute.out != d->out)
        fclose(s.mute.out);
    free(top.last_base);
    free(s.names.slots);
    free(s.param_index.slots);
    free(s.param_failed);
    arena_free(&s.tmp);
    if (diag_count(d) > before) {
        graph_free(g);
        return NULL;
    }
    return g;
}
