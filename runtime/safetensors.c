/* safetensors.c: the model's weights, mmap'd from a safetensors file and checked against the
 * model before anything runs.
 *
 * The format (https://github.com/huggingface/safetensors):
 *
 *     u64 N (little-endian) | N bytes of UTF-8 JSON | data buffer
 *
 * The JSON is one object.  Each key except "__metadata__" is a tensor name mapped to
 *
 *     {"dtype": "F32", "shape": [768, 3072], "data_offsets": [begin, end]}
 *
 * with [begin, end) a byte range of the data buffer.  "__metadata__", if present, maps
 * strings to strings and is otherwise ignored.
 *
 * The file is untrusted input: kiln_st_parse checks every field before a pointer into the
 * mapping is handed out (lengths, JSON, field names and types, dtypes, ranks, ranges in the
 * buffer, no overlaps, shape x dtype size equal to the range, no duplicate names), and every
 * message names the file and the tensor.  The JSON itself is parsed by cJSON.
 *
 * kiln_bind_weights is the bridge to the generated code: it looks up each weight the model
 * declares (trying the spec's weight_prefixes), checks dtype and shape, and hands out data
 * pointers aligned to the dtype's size (copying the tensor when the file leaves it
 * misaligned, which happens when N is not a multiple of 4).
 */
#include "kiln_rt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_CAP 100000000u           // 100 MB: real headers are well under 1 MB
#define MAX_JSON_INT 9007199254740991.0 // 2^53 - 1: larger JSON numbers may have been rounded
#define MAX_CLOSEST 3                   // closest names listed for a missing weight
#define CLOSEST_BUDGET 50000000u        // edit-distance cells spent ranking them (real files
                                        // need a few million)

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

// Append to the message being built in err[0..errlen); *pos tracks its length.
static void appendf(char *err, size_t errlen, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *err, size_t errlen, size_t *pos, const char *fmt, ...) {
    if (!err || *pos + 1 >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err + *pos, errlen - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = *pos + (size_t)n < errlen ? *pos + (size_t)n : errlen - 1;
}

// Format dims as "[2, 3]" into buf.
static const char *fmt_dims(char *buf, size_t size, int rank, const int64_t *dims) {
    size_t pos = 0;
    appendf(buf, size, &pos, "[");
    for (int k = 0; k < rank; k++)
        appendf(buf, size, &pos, "%s%lld", k ? ", " : "", (long long)dims[k]);
    appendf(buf, size, &pos, "]");
    return buf;
}

// Index of the first byte of s[0..n) that is not part of valid UTF-8 (or is NUL), or n.
// Rejects overlong forms, surrogates and code points above U+10FFFF.
static size_t utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t extra;
        unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0;   // overlong
            if (c == 0xED) hi = 0x9F;   // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90;   // overlong
            if (c == 0xF4) hi = 0x8F;   // above U+10FFFF
        } else {
            return i;
        }
        if (n - i <= extra)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= extra; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += extra + 1;
    }
    return n;
}

/* ---------------------------------------------------------------------------------------
 * dtypes
 */

typedef struct {
    const char *name;       // as in the file
    size_t size;            // bytes per element
    bool mapped;            // has a kiln_dtype
    kiln_dtype dtype;       // when mapped
} StDtype;

static const StDtype st_dtypes[] = {
    { "F64", 8, false, KILN_F32 },     { "F32", 4, true, KILN_F32 },
    { "F16", 2, false, KILN_F32 },     { "BF16", 2, false, KILN_F32 },
    { "I64", 8, true, KILN_I64 },      { "I32", 4, true, KILN_I32 },
    { "I16", 2, false, KILN_F32 },     { "I8", 1, false, KILN_F32 },
    { "U64", 8, false, KILN_F32 },     { "U32", 4, false, KILN_F32 },
    { "U16", 2, false, KILN_F32 },     { "U8", 1, false, KILN_F32 },
    { "BOOL", 1, false, KILN_F32 },    { "F8_E4M3", 1, false, KILN_F32 },
    { "F8_E5M2", 1, false, KILN_F32 },
};

static const StDtype *st_dtype_find(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0)
            return &st_dtypes[i];
    return NULL;
}

// The file's spelling of a kiln dtype ("F32").
static const char *st_dtype_of(kiln_dtype t) {
    switch (t) {
    case KILN_F32: return "F32";
    case KILN_I32: return "I32";
    case KILN_I64: return "I64";
    }
    return "?";
}

/* ---------------------------------------------------------------------------------------
 * Parsing and validation
 */

// One tensor's byte range in the data buffer, for the overlap check.
typedef struct {
    uint64_t begin, end;
    const char *name;
} Range;

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const kiln_st_tensor *)a)->name, ((const kiln_st_tensor *)b)->name);
}

static int cmp_range(const void *a, const void *b) {
    const Range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

// A JSON number that is a whole number in [0, 2^53) (so it was not rounded by cJSON).
static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d > MAX_JSON_INT || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

static const char *json_kind(const cJSON *v) {
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "invalid";
}

// Check the "__metadata__" entry: an object whose values are all strings.
static int check_metadata(const cJSON *meta, const char *file, char *err, size_t errlen) {
    if (!cJSON_IsObject(meta))
        return kiln_seterr(err, errlen, "%s: \"__metadata__\" must be an object of strings, not %s",
                      file, json_kind(meta));
    for (const cJSON *f = meta->child; f; f = f->next)
        if (!cJSON_IsString(f))
            return kiln_seterr(err, errlen,
                          "%s: \"__metadata__\": the value of \"%s\" must be a string, not %s",
                          file, f->string, json_kind(f));
    return 0;
}

// Parse one tensor entry
//     "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
// into t (name, dtype, rank, dims, data, nbytes) and its range r.  data is the start of the
// data buffer, data_len its length.  t->name is malloc'd even on failure (the caller frees).
static int parse_entry(const cJSON *e, const char *file, const unsigned char *data,
                       uint64_t data_len, kiln_st_tensor *t, Range *r, char *err,
                       size_t errlen) {
    const char *name = e->string;
    t->name = strdup(name);
    if (!t->name)
        return kiln_seterr(err, errlen, "%s: out of memory", file);
    if (!cJSON_IsObject(e))
        return kiln_seterr(err, errlen,
                      "%s: tensor '%s': entry must be an object with dtype, shape and "
                      "data_offsets, not %s", file, name, json_kind(e));

    const cJSON *jdtype = NULL, *jshape = NULL, *joffs = NULL;
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = strcmp(f->string, "dtype") == 0          ? &jdtype
                             : strcmp(f->string, "shape") == 0        ? &jshape
                             : strcmp(f->string, "data_offsets") == 0 ? &joffs
                                                                      : NULL;
        if (!slot)
            return kiln_seterr(err, errlen,
                          "%s: tensor '%s': unknown field \"%s\" (the fields are dtype, shape "
                          "and data_offsets)", file, name, f->string);
        if (*slot)
            return kiln_seterr(err, errlen, "%s: tensor '%s': field \"%s\" appears twice", file,
                          name, f->string);
        *slot = f;
    }
    if (!jdtype || !jshape || !joffs)
        return kiln_seterr(err, errlen, "%s: tensor '%s': missing field \"%s\"", file, name,
                      !jdtype ? "dtype" : !jshape ? "shape" : "data_offsets");

    // "dtype": "F32"
    if (!cJSON_IsString(jdtype))
        return kiln_seterr(err, errlen, "%s: tensor '%s': \"dtype\" must be a string, not %s", file,
                      name, json_kind(jdtype));
    const StDtype *dt = st_dtype_find(jdtype->valuestring);
    if (!dt)
        return kiln_seterr(err, errlen,
                      "%s: tensor '%s': unknown dtype \"%s\" (known: F64 F32 F16 BF16 I64 I32 "
                      "I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2)", file, name,
                      jdtype->valuestring);
    t->dtype_str = dt->name;
    t->dtype = dt->dtype;

    // "shape": [d0, d1, ...], each a whole number >= 0
    if (!cJSON_IsArray(jshape))
        return kiln_seterr(err, errlen, "%s: tensor '%s': \"shape\" must be a list, not %s", file,
                      name, json_kind(jshape));
    int rank = 0;
    uint64_t numel = 1;
    bool overflow = false;
    for (const cJSON *d = jshape->child; d; d = d->next) {
        uint64_t v;
        if (rank == KILN_RT_MAX_RANK)
            return kiln_seterr(err, errlen, "%s: tensor '%s': rank %d is above the limit of %d",
                          file, name, cJSON_GetArraySize(jshape), KILN_RT_MAX_RANK);
        if (!json_uint(d, &v))
            return kiln_seterr(err, errlen,
                          "%s: tensor '%s': shape entry %d is not a whole number in [0, 2^53)",
                          file, name, rank);
        t->dims[rank++] = (int64_t)v;
        overflow |= __builtin_mul_overflow(numel, v, &numel);
    }
    t->rank = rank;

    // "data_offsets": [begin, end]
    uint64_t off[2];
    if (!cJSON_IsArray(joffs) || cJSON_GetArraySize(joffs) != 2 ||
        !json_uint(joffs->child, &off[0]) || !json_uint(joffs->child->next, &off[1]))
        return kiln_seterr(err, errlen,
                      "%s: tensor '%s': \"data_offsets\" must be a list of two whole numbers "
                      "[begin, end]", file, name);
    if (off[0] > off[1])
        return kiln_seterr(err, errlen,
                      "%s: tensor '%s': data_offsets [%llu, %llu] are reversed (begin > end)",
                      file, name, (unsigned long long)off[0], (unsigned long long)off[1]);
    if (off[1] > data_len)
        return kiln_seterr(err, errlen,
                      "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                      "buffer (%llu bytes); the file may be truncated", file, name,
                      (unsigned long long)off[0], (unsigned long long)off[1],
                      (unsigned long long)data_len);

    char sbuf[160];
    uint64_t nbytes;
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)dt->size, &nbytes))
        return kiln_seterr(err, errlen, "%s: tensor '%s': shape %s is too large", file, name,
                      fmt_dims(sbuf, sizeof sbuf, rank, t->dims));
    if (nbytes != off[1] - off[0])
        return kiln_seterr(err, errlen,
                      "%s: tensor '%s': shape %s of %s needs %llu bytes, but data_offsets "
                      "[%llu, %llu] hold %llu", file, name,
                      fmt_dims(sbuf, sizeof sbuf, rank, t->dims), dt->name,
                      (unsigned long long)nbytes, (unsigned long long)off[0],
                      (unsigned long long)off[1], (unsigned long long)(off[1] - off[0]));

    t->data = data + off[0];
    t->nbytes = (size_t)nbytes;
    r->begin = off[0];
    r->end = off[1];
    r->name = t->name;
    return 0;
}

// Check for duplicate names (tensors sorted by name) and overlapping ranges.
static int check_layout(const kiln_safetensors *st, Range *ranges, const char *file,
                        char *err, size_t errlen) {
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return kiln_seterr(err, errlen, "%s: tensor '%s' appears twice in the header", file,
                          st->tensors[i].name);

    // Sorted by begin, ranges that do not overlap have non-decreasing ends, so comparing
    // neighbours is enough.  Empty ranges hold no bytes and cannot overlap anything.
    qsort(ranges, (size_t)st->n_tensors, sizeof *ranges, cmp_range);
    const Range *prev = NULL;
    for (int i = 0; i < st->n_tensors; i++) {
        const Range *r = &ranges[i];
        if (r->begin == r->end)
            continue;
        if (prev && r->begin < prev->end)
            return kiln_seterr(err, errlen,
                          "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap in the "
                          "data buffer", file, prev->name, (unsigned long long)prev->begin,
                          (unsigned long long)prev->end, r->name, (unsigned long long)r->begin,
                          (unsigned long long)r->end);
        prev = r;
    }
    return 0;
}

// Validate buf[0..len) as a safetensors file named `file` (for messages) and fill st's
// tensors, n_tensors, aligned and path.  On failure frees what it allocated.
static int parse_file(kiln_safetensors *st, const unsigned char *buf, size_t len,
                      const char *file, char *err, size_t errlen) {
    if (len < 8)
        return kiln_seterr(err, errlen,
                      "%s: file is %zu bytes, too short for the 8-byte header length of a "
                      "safetensors file", file, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | buf[i];
    if (n == 0)
        return kiln_seterr(err, errlen, "%s: header length is 0; not a safetensors file", file);
    if (n > len - 8)
        return kiln_seterr(err, errlen,
                      "%s: header length %llu is larger than the rest of the file (%zu bytes); "
                      "the file is truncated or not a safetensors file", file,
                      (unsigned long long)n, len - 8);
    if (n > HEADER_CAP)
        return kiln_seterr(err, errlen, "%s: header length %llu is above the limit of %u bytes",
                      file, (unsigned long long)n, HEADER_CAP);
    const unsigned char *hdr = buf + 8;
    size_t hlen = (size_t)n;
    const unsigned char *data = hdr + hlen;
    uint64_t data_len = len - 8 - hlen;

    size_t bad = utf8_check(hdr, hlen);
    if (bad < hlen)
        return kiln_seterr(err, errlen,
                      "%s: header is not valid UTF-8 text (byte 0x%02x at byte %zu of the "
                      "header)", file, hdr[bad], bad);

    // cJSON gets its own NUL-terminated copy: the mapping has no terminator, and the copy
    // has no NUL inside it (utf8_check rejects NUL bytes).
    char *text = malloc(hlen + 1);
    if (!text)
        return kiln_seterr(err, errlen, "%s: out of memory for a %zu-byte header", file, hlen);
    memcpy(text, hdr, hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + hlen ? (size_t)(end - text) : 0;
        char near[32];
        size_t k = 0;
        for (; k < 24 && at + k < hlen; k++)
            near[k] = text[at + k] >= 0x20 && text[at + k] < 0x7f ? text[at + k] : '.';
        near[k] = '\0';
        kiln_seterr(err, errlen, "%s: header is not valid JSON: error at byte %zu of the header "
               "(file offset %zu), near '%s'", file, at, at + 8, near);
        free(text);
        return -1;
    }
    for (size_t i = (size_t)(end - text); i < hlen; i++) {
        if (!strchr(" \t\r\n", text[i])) {
            kiln_seterr(err, errlen, "%s: header has data after the JSON object at byte %zu of the "
                   "header", file, i);
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        kiln_seterr(err, errlen, "%s: header must be a JSON object, not %s", file,
               json_kind(root));
        goto fail;
    }

    int n_entries = 0, n_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (++n_meta > 1) {
                kiln_seterr(err, errlen, "%s: \"__metadata__\" appears twice in the header", file);
                goto fail;
            }
            if (check_metadata(e, file, err, errlen))
                goto fail;
        } else {
            n_entries++;
        }
    }

    size_t cnt = n_entries > 0 ? (size_t)n_entries : 1;
    Range *ranges = calloc(cnt, sizeof *ranges);
    st->tensors = calloc(cnt, sizeof *st->tensors);
    st->aligned = calloc(cnt, sizeof *st->aligned);
    st->path = strdup(file);
    if (!ranges || !st->tensors || !st->aligned || !st->path) {
        free(ranges);
        kiln_seterr(err, errlen, "%s: out of memory for %d tensors", file, n_entries);
        goto fail;
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        int i = st->n_tensors++;    // counted first, so a failure frees this entry's name
        if (parse_entry(e, file, data, data_len, &st->tensors[i], &ranges[i], err, errlen)) {
            free(ranges);
            goto fail;
        }
    }
    qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
    int rc = check_layout(st, ranges, file, err, errlen);
    free(ranges);
    if (rc)
        goto fail;
    cJSON_Delete(root);
    free(text);
    return 0;

fail:
    cJSON_Delete(root);
    free(text);
    kiln_st_close(st);
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Public API
 */

// Validate a safetensors image in memory; tensors point into buf, which must outlive st.
// Messages name the file "<memory>".  On failure st is left empty (kiln_st_close is a no-op).
int kiln_st_parse(kiln_safetensors *st, const void *buf, size_t len, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    return parse_file(st, buf, len, "<memory>", err, errlen);
}

// Describe a non-regular file's kind for the error message.
static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

// Map path read-only and validate it with the same checks as kiln_st_parse.  Only regular
// files are accepted: a directory, FIFO or device is refused before anything is read (the
// open does not block on a FIFO).  On failure st is left empty.
int kiln_st_open(kiln_safetensors *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return kiln_seterr(err, errlen, "%s: cannot open weights: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return kiln_seterr(err, errlen, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return kiln_seterr(err, errlen, "%s: is %s, not a safetensors file", path,
                      file_kind(sb.st_mode));
    }
    if (sb.st_size == 0) {
        close(fd);
        return kiln_seterr(err, errlen, "%s: file is empty, not a safetensors file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return kiln_seterr(err, errlen, "%s: file is too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return kiln_seterr(err, errlen, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
    if (parse_file(st, map, size, path, err, errlen)) {
        munmap(map, size);
        return -1;
    }
    st->map = map;
    st->map_size = size;
    return 0;
}

// The tensor named exactly `name`, or NULL.  Tensors are sorted by name, so this is a
// binary search.
const kiln_st_tensor *kiln_st_find(const kiln_safetensors *st, const char *name) {
    if (!st->tensors || st->n_tensors == 0)
        return NULL;
    kiln_st_tensor key = { .name = (char *)name };
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, cmp_tensor_name);
}

// Unmap the file and free the tensor table, names and aligned copies; st becomes empty.
// Safe on an empty (zeroed or failed) st and when called twice.
void kiln_st_close(kiln_safetensors *st) {
    for (int i = 0; i < st->n_tensors; i++) {
        free(st->tensors[i].name);
        if (st->aligned)
            kiln_aligned_free(st->aligned[i]);
    }
    free(st->tensors);
    free(st->aligned);
    free(st->path);
    if (st->map)
        munmap(st->map, st->map_size);
    memset(st, 0, sizeof *st);
}

/* ---------------------------------------------------------------------------------------
 * Binding weights to a model
 */

// Levenshtein distance between a and b (each cut at 256 bytes: names are shorter, and the
// cut keeps a hostile header from costing quadratic time).  Adds the cells computed to *cells.
static size_t edit_distance(const char *a, const char *b, size_t *cells) {
    enum { CUT = 256 };
    size_t n = strnlen(a, CUT), m = strnlen(b, CUT);
    *cells += n * m;
    size_t row[CUT + 1];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];   // row[i-1][j-1]
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];  // row[i-1][j]
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

// How far a file's tensor name is from a wanted name: the edit distance, or, if less, the
// distance to a dotted suffix of it plus 1, so `transformer.h.0.ln_1.weight` is close to
// `h.0.ln_1.weight` even when the spec lists no prefix.  Suffixes are tried only while
// *cells is below CLOSEST_BUDGET: one name may hold a million dots.
static size_t name_distance(const char *want, const char *cand, size_t *cells) {
    size_t d = edit_distance(want, cand, cells);
    for (const char *p = strchr(cand, '.'); p && d > 1 && *cells < CLOSEST_BUDGET;
         p = strchr(p + 1, '.')) {
        size_t ds = edit_distance(want, p + 1, cells) + 1;
        d = ds < d ? ds : d;
    }
    return d;
}

// prefix + name in a malloc'd string, or NULL when out of memory.
static char *concat(const char *prefix, const char *name) {
    size_t a = strlen(prefix), b = strlen(name);
    char *s = malloc(a + b + 1);
    if (s) {
        memcpy(s, prefix, a);
        memcpy(s + a, name, b + 1);
    }
    return s;
}

// The message for a weight not in the file: the names tried and the closest names there.
static int missing_weight(const kiln_model *m, const kiln_safetensors *st, const char *name,
                          char *err, size_t errlen) {
    size_t pos = 0;
    const char *file = st->path ? st->path : "the weights file";
    appendf(err, errlen, &pos, "weight '%s' is not in %s", name, file);
    for (int p = 0; p < m->n_weight_prefixes; p++)
        appendf(err, errlen, &pos, "%s'%s%s'", p ? ", " : " (also tried ",
                m->weight_prefixes[p], name);
    if (m->n_weight_prefixes > 0)
        appendf(err, errlen, &pos, ")");
    if (st->n_tensors == 0) {
        appendf(err, errlen, &pos, "; the file has no tensors");
        return -1;
    }

    // Keep the MAX_CLOSEST nearest names (ties in name order), by distance to the bare or any
    // prefixed name.  The ranking stops when CLOSEST_BUDGET edit-distance cells are spent, so
    // a hostile header (a million long dotted names) cannot make this error take minutes.
    int best[MAX_CLOSEST];
    size_t best_d[MAX_CLOSEST];
    int n_best = 0, n_ranked = 0;
    size_t cells = 0;
    for (int i = 0; i < st->n_tensors && cells < CLOSEST_BUDGET; i++, n_ranked++) {
        const char *cand = st->tensors[i].name;
        size_t d = name_distance(name, cand, &cells);
        for (int p = 0; p < m->n_weight_prefixes; p++) {
            char *full = concat(m->weight_prefixes[p], name);
            if (full) {
                size_t dp = name_distance(full, cand, &cells);
                d = dp < d ? dp : d;
                free(full);
            }
        }
        int at = n_best;
        while (at > 0 && best_d[at - 1] > d)
            at--;
        if (at == MAX_CLOSEST)
            continue;
        int last = n_best < MAX_CLOSEST ? n_best : MAX_CLOSEST - 1;
        for (int k = last; k > at; k--) {
            best[k] = best[k - 1];
            best_d[k] = best_d[k - 1];
        }
        best[at] = i;
        best_d[at] = d;
        if (n_best < MAX_CLOSEST)
            n_best++;
    }
    if (n_ranked < st->n_tensors)
        appendf(err, errlen, &pos, "; closest names among the first %d of %d tensors: ",
                n_ranked, st->n_tensors);
    else
        appendf(err, errlen, &pos, "; closest names: ");
    for (int k = 0; k < n_best; k++)
        appendf(err, errlen, &pos, "%s%s", k ? ", " : "", st->tensors[best[k]].name);
    return -1;
}

// Bind every weight of m (see kiln_rt.h).  out[i] is aligned to the dtype's size: the
// mapping when the file aligns the tensor, else a 64-byte aligned copy that st keeps (in
// st->aligned, shared by later binds) and kiln_st_close frees.
int kiln_bind_weights(const kiln_model *m, const kiln_safetensors *st, const void **out,
                      char *err, size_t errlen) {
    for (int i = 0; i < m->n_weights; i++) {
        const kiln_tensor_desc *w = &m->weights[i];
        const kiln_st_tensor *t = kiln_st_find(st, w->name);
        int via = -1;   // index of the prefix that found it, or -1 for the bare name
        for (int p = 0; !t && p < m->n_weight_prefixes; p++) {
            char *full = concat(m->weight_prefixes[p], w->name);
            if (!full)
                return kiln_seterr(err, errlen, "out of memory");
            t = kiln_st_find(st, full);
            free(full);
            via = p;
        }
        if (!t)
            return missing_weight(m, st, w->name, err, errlen);

        char as[256] = "";
        if (via >= 0)
            snprintf(as, sizeof as, " (found as '%s')", t->name);
        const char *want = st_dtype_of(w->dtype);
        if (strcmp(t->dtype_str, want) != 0)
            return kiln_seterr(err, errlen, "weight '%s'%s: dtype is %s in the file, the spec wants %s",
                          w->name, as, t->dtype_str, kiln_dtype_name(w->dtype));
        bool same = t->rank == w->rank;
        for (int k = 0; same && k < w->rank; k++)
            same = t->dims[k] == w->dims[k];
        if (!same) {
            char a[160], b[160];
            return kiln_seterr(err, errlen, "weight '%s'%s: shape in the file is %s, the spec wants %s",
                          w->name, as, fmt_dims(a, sizeof a, t->rank, t->dims),
                          fmt_dims(b, sizeof b, w->rank, w->dims));
        }

        size_t align = kiln_dtype_size(w->dtype);
        if ((uintptr_t)t->data % align == 0) {
            out[i] = t->data;
            continue;
        }
        if (!st->aligned)
            return kiln_seterr(err, errlen, "weight '%s': the weights file is not open", w->name);
        size_t idx = (size_t)(t - st->tensors);
        if (!st->aligned[idx]) {
            void *copy = kiln_aligned_alloc(t->nbytes);
            if (!copy)
                return kiln_seterr(err, errlen, "weight '%s': out of memory for an aligned copy "
                              "of %zu bytes", w->name, t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            st->aligned[idx] = copy;
        }
        out[i] = st->aligned[idx];
    }
    return 0;
}
