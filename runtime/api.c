/* api.c: the C API a program embeds a generated model with (docs/api.md).
 *
 *   kiln_instance *m = kiln_open(&model, "model.safetensors", threads, err, sizeof err);
 *   kiln_forward(m, sym, inputs, outputs, err, sizeof err);    // as often as needed
 *   kiln_close(m);
 *
 * An instance owns everything one model needs between calls: the mapped weights, the packed
 * panels prepare() fills once, the activation arena and the worker threads.  Instances share
 * nothing, so two of them may run in two threads at once; one instance runs one forward at
 * a time.  Nothing here calls exit(): every failure is a return value and a message.
 *
 * The generated file wraps these in typed functions named after the model (bert_open,
 * bert_forward, bert_close) and `kiln emit` writes their declarations to <model>.h.
 * kiln_main (main.c) shares the checks below: the model description and packed weights.
 */
#include "kiln_rt.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#define MAX_SYMS ((int)(sizeof ((kiln_run *)0)->sym / sizeof(int64_t)))

struct kiln_instance {
    const kiln_model *model;
    kiln_safetensors st;
    const void **weights;       // [n_weights] bound by kiln_bind_weights
    char *arena;
    char *packed;
    kiln_pool *pool;
    float **state;              // [n_states] zeroed at open, at their bounds
};

/* ---------------------------------------------------------------------------------------
 * The model description
 */

static int check_desc(const kiln_model *m, const char *what, const kiln_tensor_desc *d,
                      char *msg, size_t size) {
    if (!d->name || d->rank < 0 || d->rank > KILN_RT_MAX_RANK || kiln_dtype_size(d->dtype) == 0)
        return kiln_seterr(msg, size, "%s '%s': bad name, rank %d or dtype %d", what,
                    d->name ? d->name : "(null)", d->rank, (int)d->dtype);
    for (int k = 0; k < d->rank; k++)
        if (d->sym[k] < -1 || d->sym[k] >= m->n_syms || (d->sym[k] < 0 && d->dims[k] < 0))
            return kiln_seterr(msg, size, "%s '%s': dim %d has sym %d (model has %d) and size %lld",
                        what, d->name, k, d->sym[k], m->n_syms, (long long)d->dims[k]);
    return 0;
}

// The least value symbolic dim s takes: 0 for a state's position (a fresh state holds no
// token), 1 for a dim an input's shape binds.
static int64_t sym_least(const kiln_model *m, int s) {
    return m->n_states && s == m->position_sym ? 0 : 1;
}

// See kiln_rt.h: counts, ranks, symbol indices, and every symbolic dim of an output
// appearing in some input (else nothing could bind it).
int kiln_model_check(const kiln_model *m, char *msg, size_t size) {
    if (m->n_syms < 0 || m->n_syms > MAX_SYMS || (m->n_syms && !m->syms))
        return kiln_seterr(msg, size, "%d symbolic dims (the runtime allows %d)", m->n_syms, MAX_SYMS);
    for (int s = 0; s < m->n_syms; s++) {
        int64_t lo = sym_least(m, s);
        if (!m->syms[s].name || m->syms[s].max < lo)
            return kiln_seterr(msg, size, "symbolic dim %d has no name or a bound below %lld", s,
                               (long long)lo);
    }
    if (m->n_inputs < 0 || m->n_outputs < 0 || m->n_weights < 0 || m->n_weight_prefixes < 0 ||
        (m->n_inputs && !m->inputs) || (m->n_outputs && !m->outputs) ||
        (m->n_weights && !m->weights) || (m->n_weight_prefixes && !m->weight_prefixes) ||
        !m->forward)
        return kiln_seterr(msg, size, "bad counts or missing arrays");
    for (int i = 0; i < m->n_inputs; i++)
        if (check_desc(m, "input", &m->inputs[i], msg, size))
            return -1;
    for (int i = 0; i < m->n_weights; i++)
        if (check_desc(m, "weight", &m->weights[i], msg, size))
            return -1;
    if (m->n_states < 0 || (m->n_states && (!m->states || m->position_sym < 0 ||
                                             m->position_sym >= m->n_syms)))
        return kiln_seterr(msg, size, "bad states or position");
    for (int i = 0; i < m->n_states; i++)
        if (check_desc(m, "state", &m->states[i], msg, size) || m->states[i].dtype != KILN_F32)
            return -1;
    if (m->n_dump < 0 || (m->n_dump && !m->dump))       // a --dump build's table (dump.c)
        return kiln_seterr(msg, size, "bad dump table");
    for (int i = 0; i < m->n_dump; i++) {
        const kiln_dump_entry *e = &m->dump[i];
        bool ok = e->name && e->rank >= 0 && e->rank <= KILN_RT_MAX_RANK;
        for (int k = 0; ok && !e->held_by && k < e->rank; k++)
            ok = e->sym[k] < m->n_syms && (e->sym[k] >= 0 || e->dims[k] >= 0);
        if (!ok)
            return kiln_seterr(msg, size, "dump entry %d ('%s') is malformed", i,
                        e->name ? e->name : "?");
    }
    for (int i = 0; i < m->n_outputs; i++) {
        const kiln_tensor_desc *d = &m->outputs[i];
        if (check_desc(m, "output", d, msg, size))
            return -1;
        for (int k = 0; k < d->rank; k++) {
            bool bound = d->sym[k] < 0;
            for (int j = 0; !bound && j < m->n_inputs; j++)
                for (int kk = 0; kk < m->inputs[j].rank; kk++)
                    bound |= m->inputs[j].sym[kk] == d->sym[k];
            if (!bound)
                return kiln_seterr(msg, size, "output '%s': dim '%s' appears in no input, so nothing "
                            "binds it", d->name, m->syms[d->sym[k]].name);
        }
    }
    return 0;
}

// See kiln_rt.h.
int kiln_states_alloc(const kiln_model *m, float ***out) {
    *out = NULL;
    if (m->n_states == 0)
        return 0;
    float **st = calloc((size_t)m->n_states, sizeof *st);
    if (!st)
        return -1;
    *out = st;
    for (int k = 0; k < m->n_states; k++) {
        const kiln_tensor_desc *d = &m->states[k];
        size_t n = 1;
        for (int j = 0; j < d->rank; j++)
            if (__builtin_mul_overflow(n, (size_t)d->dims[j], &n))
                return -1;
        if (__builtin_mul_overflow(n, sizeof(float), &n) || !(st[k] = kiln_aligned_alloc(n)))
            return -1;
    }
    return 0;
}

void kiln_states_free(const kiln_model *m, float **st) {
    for (int k = 0; st && k < m->n_states; k++)
        kiln_aligned_free(st[k]);
    free(st);
}

/* ---------------------------------------------------------------------------------------
 * Instances
 */

kiln_instance *kiln_open(const kiln_model *m, const char *weights_path, int threads, char *err,
                         size_t errlen) {
    char msg[1024];
    if (!m || !weights_path) {
        kiln_seterr(err, errlen, "kiln_open: no model or no weights path");
        return NULL;
    }
    if (kiln_model_check(m, msg, sizeof msg)) {
        kiln_seterr(err, errlen, "internal error: bad model description: %s", msg);
        return NULL;
    }
    if (kiln_cpu_check(m->isa, msg, sizeof msg)) {
        kiln_seterr(err, errlen, "%s", msg);
        return NULL;
    }
    if (threads < 0) {
        kiln_seterr(err, errlen, "kiln_open: %d threads (0 means the default)", threads);
        return NULL;
    }
    kiln_instance *in = calloc(1, sizeof *in);
    if (!in || !(in->weights = calloc((size_t)m->n_weights + 1, sizeof *in->weights))) {
        free(in);
        kiln_seterr(err, errlen, "out of memory");
        return NULL;
    }
    in->model = m;
    if (kiln_st_open(&in->st, weights_path, msg, sizeof msg) ||
        kiln_bind_weights(m, &in->st, in->weights, msg, sizeof msg)) {
        kiln_seterr(err, errlen, "%s", msg);
        goto fail;
    }
    if (!(in->arena = kiln_aligned_alloc(m->arena_bytes))) {
        kiln_seterr(err, errlen, "cannot allocate the %zu-byte arena", m->arena_bytes);
        goto fail;
    }
    if (kiln_states_alloc(m, &in->state)) {
        kiln_seterr(err, errlen, "cannot allocate the model's state");
        goto fail;
    }
    if (!(in->pool = kiln_pool_new(threads ? threads : kiln_default_threads()))) {
        kiln_seterr(err, errlen, "cannot create the worker threads");
        goto fail;
    }
    if (m->prepare) {
        if (!(in->packed = kiln_huge_alloc(m->packed_bytes))) {
            kiln_seterr(err, errlen, "cannot allocate the %zu bytes of packed weights", m->packed_bytes);
            goto fail;
        }
        kiln_run r;
        memset(&r, 0, sizeof r);
        r.model = m;
        r.weights = in->weights;
        r.packed = in->packed;
        r.pool = in->pool;
        if (m->prepare(&r) != 0) {
            r.err[sizeof r.err - 1] = '\0';
            kiln_seterr(err, errlen, "prepare: %s", r.err[0] ? r.err : "failed (no message)");
            goto fail;
        }
    }
    return in;
fail:
    kiln_close(in);
    return NULL;
}

// The element count of desc d at the bound dims sym[].
static size_t numel_at(const kiln_tensor_desc *d, const int64_t *sym) {
    size_t n = 1;
    for (int k = 0; k < d->rank; k++)
        n *= (size_t)(d->sym[k] >= 0 ? sym[d->sym[k]] : d->dims[k]);
    return n;
}

int kiln_forward(kiln_instance *in, const int64_t *sym, const void *const *inputs,
                 void *const *outputs, char *err, size_t errlen) {
    if (!in)
        return kiln_seterr(err, errlen, "kiln_forward: no instance");
    const kiln_model *m = in->model;
    kiln_run r;
    memset(&r, 0, sizeof r);
    r.model = m;
    for (int s = 0; s < m->n_syms; s++) {
        int64_t lo = sym_least(m, s);
        if (!sym || sym[s] < lo || sym[s] > m->syms[s].max)
            return kiln_seterr(err, errlen, "%s = %lld is outside [%lld, %lld]", m->syms[s].name,
                        sym ? (long long)sym[s] : 0LL, (long long)lo, (long long)m->syms[s].max);
        r.sym[s] = sym[s];
    }
    // The checks kiln_main makes of .npy inputs, on the caller's buffers.
    for (int i = 0; i < m->n_inputs; i++) {
        const kiln_tensor_desc *d = &m->inputs[i];
        if (!inputs || !inputs[i])
            return kiln_seterr(err, errlen, "input '%s' is NULL", d->name);
        size_t n = numel_at(d, r.sym);
        const kiln_range *rg = m->input_ranges ? &m->input_ranges[i] : NULL;
        if (d->dtype == KILN_F32) {
            const float *x = inputs[i];
            for (size_t j = 0; j < n; j++)
                if (!isfinite(x[j]))
                    return kiln_seterr(err, errlen, "input '%s' has a non-finite value at flat index "
                                "%zu", d->name, j);
        } else if (rg && rg->has_range && d->dtype == KILN_I32) {
            const int32_t *x = inputs[i];
            for (size_t j = 0; j < n; j++)
                if (x[j] < rg->lo || x[j] > rg->hi)
                    return kiln_seterr(err, errlen, "input '%s' has the value %d at flat index %zu, "
                                "outside the spec's range [%lld, %lld]", d->name, x[j], j,
                                (long long)rg->lo, (long long)rg->hi);
        }
    }
    for (int o = 0; o < m->n_outputs; o++)
        if (!outputs || !outputs[o])
            return kiln_seterr(err, errlen, "output '%s' is NULL", m->outputs[o].name);
    r.weights = in->weights;
    r.inputs = inputs;
    r.outputs = outputs;
    r.arena = in->arena;
    r.packed = in->packed;
    r.pool = in->pool;
    r.state = in->state;
    if (m->forward(&r) != 0) {
        r.err[sizeof r.err - 1] = '\0';
        return kiln_seterr(err, errlen, "%s", r.err[0] ? r.err : "forward failed (no message)");
    }
    return 0;
}

void kiln_close(kiln_instance *in) {
    if (!in)
        return;
    kiln_pool_free(in->pool);
    kiln_aligned_free(in->packed);
    kiln_aligned_free(in->arena);
    kiln_states_free(in->model, in->state);
    kiln_st_close(&in->st);
    free(in->weights);
    free(in);
}
