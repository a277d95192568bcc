/* compiler/front.h: the front end, YAML spec -> IR graph.
 *
 * spec_load() is the front end's one entry point for the driver: it reads a spec file (the
 * language is docs/spec.md), evaluates its parameters and expressions, and builds the IR
 * graph through the node constructors of ir/graph.c, so every node it returns has an
 * inferred type and the SrcLoc of its `op:` in the spec.
 *
 * Sections follow the files that define them: expr.c (expressions), spec_yaml.c (libyaml
 * -> a small tree of YAML nodes with their places), spec.c (tree -> graph).
 */
#ifndef KILN_FRONT_H
#define KILN_FRONT_H

#include "ir.h"

/* ---------------------------------------------------------------------------------------
 * spec.c: spec file -> Graph
 */

// SpecDefine: one `-D name=value` from the command line; strings are the caller's.
typedef struct {
    const char *name;
    const char *value;
} SpecDefine;

// Parse and check the spec at `path` with the parameter overrides `defs`.  Returns the
// graph (shapes inferred, every node with its SrcLoc, params/inputs/outputs/
// weight_prefixes/syms filled), or NULL after reporting every error found to `d` (at least
// one).  The caller frees the graph with graph_free().  SrcLoc.file in the graph points at
// g->spec_path, which holds `path` as given.
Graph *spec_load(const char *path, const SpecDefine *defs, int n_defs, Diag *d);

/* ---------------------------------------------------------------------------------------
 * expr.c: arithmetic expressions over parameters (docs/spec.md, "Parameters and
 * expressions")
 *
 *   expr   = term (("+" | "-") term)*
 *   term   = unary (("*" | "/" | "//" | "%") unary)*
 *   unary  = ("-" | "+") unary | power
 *   power  = atom ("**" unary)?
 *   atom   = number | name | name "(" expr ("," expr)* ")" | "(" expr ")"
 */

// ExprEnv: how an expression finds the values of names.
typedef struct {
    // Store the value of `name` in *value and return true; or return false after writing
    // the reason into why[n_why] (e.g. "unknown name 'n_embed'; did you mean 'n_embd'?").
    bool (*lookup)(void *ctx, const char *name, double *value, char *why, size_t n_why);
    void *ctx;
} ExprEnv;

// ExprError: what went wrong, and where (0-based byte offset into the source).
typedef struct {
    int pos;
    char msg[256];
} ExprError;

// Evaluate `src`.  Returns true and stores a finite result in *out, or returns false and
// fills *err.  `env` may be NULL (then every name is unknown).  Never reads past the NUL.
bool expr_eval(const char *src, const ExprEnv *env, double *out, ExprError *err);

// The shortest decimal form of v that reads back as v: 768, 0.125, 1e-05, -3.4028234663852886e+38.
void expr_fmt(double v, char *buf, size_t n);

// `src` with every name replaced by its value ("n_embd / n_head" -> "768 / 5").  Returns
// false (and leaves buf empty) when src holds no name to replace or a lookup fails.
bool expr_substitute(const char *src, const ExprEnv *env, char *buf, size_t n);

// Is v a whole number that an int64 holds exactly (|v| <= 2^53)?
bool expr_is_whole(double v);

/* ---------------------------------------------------------------------------------------
 * spec_yaml.c: libyaml -> YNode tree
 *
 * The tree keeps what the spec reader needs: kinds, scalar text, and places.  Aliases are
 * rejected (a spec has no use for them, and they would let a small file expand hugely);
 * nesting is limited; duplicate mapping keys are errors.
 */

typedef enum { YN_SCALAR, YN_SEQ, YN_MAP } YNodeKind;

typedef struct YNode YNode;
typedef struct {
    YNode *key;             // always a YN_SCALAR
    YNode *val;
} YPair;

struct YNode {
    YNodeKind kind;
    SrcLoc loc;             // first character (of a quoted scalar: its opening quote)
    // YN_SCALAR
    const char *str;        // NUL-terminated text after YAML unquoting/folding
    bool quoted;            // written in quotes or as a block scalar (never a bare word)
    int text_col;           // column of str[0] when byte offsets into str map 1:1 onto the
                            // source line (one-line scalar, no escapes); else 0
    // YN_SEQ
    YNode **items;
    int n_items;
    // YN_MAP, in file order
    YPair *pairs;
    int n_pairs;
};

// Read the YAML file `path` (one document) into a tree allocated from `a`.  Returns the
// document's root, or NULL after reporting errors to `d` (syntax errors carry libyaml's
// problem text at its place).  Every SrcLoc.file is `file`, which must outlive the tree.
YNode *yaml_read_file(const char *path, const char *file, Arena *a, Diag *d);

// The value of `key` in mapping `m`, or NULL (also when m is not a mapping).
YNode *ymap_get(const YNode *m, const char *key);
// The pair whose key is `key`, or NULL.
const YPair *ymap_pair(const YNode *m, const char *key);
// "a list", "a mapping", "'foo'" (a scalar's text, shortened), for "found ..." messages.
const char *ynode_describe(const YNode *n, char *buf, size_t size);

#endif
