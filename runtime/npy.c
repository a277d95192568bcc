/* npy.c: NumPy .npy files, the model binary's input and output format.
 *
 * A .npy file is (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)
 *
 *     "\x93NUMPY" | major | minor | header length (u16 for 1.0, u32 for 2.0 and 3.0, LE)
 *     | header: a Python dict literal, padded with spaces, ending in '\n' | raw data
 *
 * for example  {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *
 * Reading accepts the three dtypes the runtime computes with (f32 '<f4', i32 '<i4', i64
 * '<i8'), little-endian, C order, and checks that the data is exactly numel x itemsize bytes.
 * The header is parsed as the small subset of Python literals numpy writes: keys in any order,
 * any whitespace, an optional trailing comma, tuples `()`, `(3,)`, `(2, 3)`.  Every error
 * says what was found and where; files are untrusted and all arithmetic is overflow-checked.
 *
 * Writing produces version 1.0 with the data at a multiple of 64 bytes (as numpy does), into
 * a temporary file that is renamed over the destination only when complete.
 */
#include "kiln_rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

// Format a shape as numpy prints it: "()", "(3,)", "(2, 3)"; truncated to fit buf.
static const char *fmt_shape(char *buf, size_t size, int rank, const int64_t *dims) {
    size_t pos = 0;
    for (int k = 0; k <= rank && pos < size; k++) {
        int n = k < rank ? snprintf(buf + pos, size - pos, "%s%lld", k ? ", " : "(",
                                    (long long)dims[k])
                         : snprintf(buf + pos, size - pos, "%s%s)", rank == 0 ? "(" : "",
                                    rank == 1 ? "," : "");
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    return buf;
}

// numel x itemsize of a shape, or false when it does not fit in size_t.
static bool shape_bytes(int rank, const int64_t *dims, size_t itemsize, size_t *out) {
    size_t n = itemsize;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0 || (uint64_t)dims[k] > SIZE_MAX)
            return false;
        if (__builtin_mul_overflow(n, (size_t)dims[k], &n))
            return false;
    }
    *out = n;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Header dict
 *
 *   dict  = "{" (item ",")* [item [","]] "}"        whitespace allowed between tokens
 *   item  = str ":" value
 *   value = str | "True" | "False" | tuple
 *   tuple = "(" ")" | "(" int "," ")" | "(" int ("," int)+ [","] ")"
 *   str   = "'" chars "'" | '"' chars '"'             (no escapes)
 *   int   = digits ["L"]                               (Python 2 numpy wrote 3L)
 */

typedef struct {
    const char *start;      // header text, for positions in messages
    const char *p;          // next unread byte
    const char *end;
    char *err;
    size_t errlen;
} Cur;

typedef struct {
    char descr[16];
    bool fortran;
    int rank;
    int64_t dims[KILN_RT_MAX_RANK];
} Header;

static int cur_err(Cur *c, const char *what) {
    if (c->p == c->end)
        return kiln_seterr(c->err, c->errlen, "header: %s at the end of the header dict (byte %zu); "
                      "the dict is cut short", what, (size_t)(c->p - c->start));
    return kiln_seterr(c->err, c->errlen, "header: %s at byte %zu of the header dict", what,
                  (size_t)(c->p - c->start));
}

static void skip_ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool at(Cur *c, char ch) {
    return c->p < c->end && *c->p == ch;
}

// A quoted string into out[0..size); a longer one is an error.
static int parse_str(Cur *c, char *out, size_t size) {
    if (!at(c, '\'') && !at(c, '"'))
        return cur_err(c, "expected a quoted string");
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n')
            return cur_err(c, "unsupported character in a string");
        if (n + 1 >= size)
            return cur_err(c, "string too long");
        out[n++] = *c->p++;
    }
    if (c->p == c->end)
        return cur_err(c, "unterminated string");
    c->p++;
    out[n] = '\0';
    return 0;
}

// "True" or "False".
static int parse_bool(Cur *c, bool *out) {
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = true;
    } else if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = false;
    } else {
        return cur_err(c, "expected True or False");
    }
    return 0;
}

// A non-negative decimal integer that fits in int64.
static int parse_int(Cur *c, int64_t *out) {
    if (at(c, '-'))
        return cur_err(c, "negative dimension");
    if (c->p == c->end || *c->p < '0' || *c->p > '9')
        return cur_err(c, "expected a dimension (a whole number)");
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
            return cur_err(c, "dimension does not fit in 64 bits");
        c->p++;
    }
    if (at(c, 'L'))
        c->p++;
    *out = v;
    return 0;
}

static int parse_tuple(Cur *c, Header *h) {
    if (!at(c, '('))
        return cur_err(c, "'shape' must be a tuple such as (2, 3)");
    c->p++;
    skip_ws(c);
    h->rank = 0;
    if (at(c, ')')) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (h->rank == KILN_RT_MAX_RANK)
            return cur_err(c, "shape has more dims than the runtime's limit of "
                              "KILN_RT_MAX_RANK (6)");
        if (parse_int(c, &h->dims[h->rank]))
            return -1;
        h->rank++;
        skip_ws(c);
        bool comma = at(c, ',');
        if (comma) {
            c->p++;
            skip_ws(c);
        }
        if (at(c, ')')) {
            if (h->rank == 1 && !comma)
                return cur_err(c, "'shape' (n) is not a tuple; numpy writes (n,)");
            c->p++;
            return 0;
        }
        if (!comma)
            return cur_err(c, "expected ',' or ')' in 'shape'");
    }
}

// Parse the header dict text[0..n) into h.  All three keys are required, once each.
static int parse_header(const char *text, size_t n, Header *h, char *err, size_t errlen) {
    Cur c = { text, text, text + n, err, errlen };
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    skip_ws(&c);
    if (!at(&c, '{'))
        return cur_err(&c, "expected '{'");
    c.p++;
    for (;;) {
        skip_ws(&c);
        if (at(&c, '}'))
            break;
        char key[32];
        const char *key_at = c.p;
        if (parse_str(&c, key, sizeof key))
            return -1;
        skip_ws(&c);
        if (!at(&c, ':'))
            return cur_err(&c, "expected ':' after a key");
        c.p++;
        skip_ws(&c);
        bool *seen;
        int rc;
        if (strcmp(key, "descr") == 0) {
            seen = &seen_descr;
            if (!at(&c, '\'') && !at(&c, '"'))
                return cur_err(&c, "'descr' must be a string such as '<f4' (structured "
                                   "dtypes are not supported)");
            rc = parse_str(&c, h->descr, sizeof h->descr);
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &seen_fortran;
            rc = parse_bool(&c, &h->fortran);
        } else if (strcmp(key, "shape") == 0) {
            seen = &seen_shape;
            rc = parse_tuple(&c, h);
        } else {
            c.p = key_at;
            return cur_err(&c, "unknown key (the keys are 'descr', 'fortran_order', 'shape')");
        }
        if (rc)
            return -1;
        if (*seen) {
            c.p = key_at;
            return cur_err(&c, "duplicate key");
        }
        *seen = true;
        skip_ws(&c);
        if (at(&c, ','))
            c.p++;
        else if (!at(&c, '}'))
            return cur_err(&c, "expected ',' or '}'");
    }
    c.p++;  // '}'
    skip_ws(&c);
    if (c.p != c.end)
        return cur_err(&c, "unexpected text after the dict");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return kiln_seterr(err, errlen, "header: missing key '%s'",
                      !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
    return 0;
}

// Map a descr to a kiln dtype: '<f4', '<i4', '<i8', also with '=' or '|' or no byte order
// (all little-endian on the machines kiln targets).
static int descr_dtype(const char *descr, kiln_dtype *out, char *err, size_t errlen) {
    const char *d = descr;
    if (*d == '>')
        return kiln_seterr(err, errlen, "dtype '%s' is big-endian; kiln reads little-endian "
                      "arrays (convert with a.astype(a.dtype.newbyteorder('<')))", descr);
    if (*d == '<' || *d == '=' || *d == '|')
        d++;
    if (strcmp(d, "f4") == 0)
        *out = KILN_F32;
    else if (strcmp(d, "i4") == 0)
        *out = KILN_I32;
    else if (strcmp(d, "i8") == 0)
        *out = KILN_I64;
    else
        return kiln_seterr(err, errlen, "dtype '%s' is not supported (kiln reads '<f4', '<i4' "
                      "and '<i8'; convert with a.astype(np.float32) or np.int32)", descr);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Reading
 */

// Validate the .npy image buf[0..len) and fill out's dtype, rank and dims; *data_off and
// *nbytes locate the data.  Does not touch out->data.  Messages do not name a file.
static int parse_npy(const unsigned char *buf, size_t len, kiln_npy *out, size_t *data_off,
                     size_t *nbytes, char *err, size_t errlen) {
    if (len < 8 || memcmp(buf, npy_magic, 6) != 0)
        return kiln_seterr(err, errlen, "not a .npy file (it does not start with \\x93NUMPY)");
    unsigned major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0)
        return kiln_seterr(err, errlen, "unsupported .npy version %u.%u (kiln reads 1.0, 2.0, 3.0)",
                      major, minor);
    size_t pre = major == 1 ? 10 : 12;  // magic, version, header length
    if (len < pre)
        return kiln_seterr(err, errlen, "file is truncated inside the header length");
    size_t hlen = major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                             : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
                                   (size_t)buf[11] << 24;
    if (hlen > len - pre)
        return kiln_seterr(err, errlen, "header is truncated: its length is %zu bytes but the file "
                      "has %zu after the preamble", hlen, len - pre);

    Header h;
    memset(&h, 0, sizeof h);
    if (parse_header((const char *)buf + pre, hlen, &h, err, errlen))
        return -1;
    kiln_dtype dt;
    if (descr_dtype(h.descr, &dt, err, errlen))
        return -1;
    if (h.fortran)
        return kiln_seterr(err, errlen, "array is in Fortran order; kiln reads C order (save "
                      "np.ascontiguousarray(a))");
    char sbuf[160];
    size_t need;
    if (!shape_bytes(h.rank, h.dims, kiln_dtype_size(dt), &need))
        return kiln_seterr(err, errlen, "shape %s is too large",
                      fmt_shape(sbuf, sizeof sbuf, h.rank, h.dims));
    size_t have = len - pre - hlen;
    if (have < need)
        return kiln_seterr(err, errlen, "data is truncated: shape %s of '%s' needs %zu bytes, the "
                      "file has %zu", fmt_shape(sbuf, sizeof sbuf, h.rank, h.dims), h.descr,
                      need, have);
    if (have > need)
        return kiln_seterr(err, errlen, "file has %zu bytes of trailing data after the %zu bytes "
                      "of shape %s of '%s'", have - need, need,
                      fmt_shape(sbuf, sizeof sbuf, h.rank, h.dims), h.descr);

    out->dtype = dt;
    out->rank = h.rank;
    memcpy(out->dims, h.dims, sizeof h.dims);
    *data_off = pre + hlen;
    *nbytes = need;
    return 0;
}

// Parse a .npy image in memory into out, with its data copied into a malloc'd buffer.
// Returns 0, or -1 with a message and out emptied.
int kiln_npy_parse(const void *buf, size_t len, kiln_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t off, nbytes;
    if (parse_npy(buf, len, out, &off, &nbytes, err, errlen)) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->data = malloc(nbytes ? nbytes : 1);
    if (!out->data) {
        memset(out, 0, sizeof *out);
        return kiln_seterr(err, errlen, "out of memory for %zu bytes", nbytes);
    }
    memcpy(out->data, (const unsigned char *)buf + off, nbytes);
    return 0;
}

// Read path into out (see kiln_rt.h).  Only regular files are read; the open does not block
// on a FIFO.  The file is read whole, then its data is moved to the front of the same buffer,
// so reading costs one copy of the file in memory.  Messages start with the path.
int kiln_npy_read(const char *path, kiln_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return kiln_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return kiln_seterr(err, errlen, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return kiln_seterr(err, errlen, "%s: is %s, not a .npy file", path,
                      S_ISDIR(sb.st_mode)    ? "a directory"
                      : S_ISFIFO(sb.st_mode) ? "a FIFO (named pipe)"
                                             : "a device or socket");
    }
    if ((uint64_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return kiln_seterr(err, errlen, "%s: file is too large", path);
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return kiln_seterr(err, errlen, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            close(fd);
            free(buf);
            return e ? kiln_seterr(err, errlen, "%s: read failed: %s", path, strerror(e))
                     : kiln_seterr(err, errlen, "%s: file shrank while being read", path);
        }
        got += (size_t)n;
    }
    close(fd);

    char msg[448];
    size_t off, nbytes;
    if (parse_npy(buf, len, out, &off, &nbytes, msg, sizeof msg)) {
        free(buf);
        memset(out, 0, sizeof *out);
        return kiln_seterr(err, errlen, "%s: %s", path, msg);
    }
    memmove(buf, buf + off, nbytes);
    void *shrunk = realloc(buf, nbytes ? nbytes : 1);
    out->data = shrunk ? shrunk : buf;
    return 0;
}

// Free a's data and empty it; safe on an empty or failed kiln_npy.
void kiln_npy_free(kiln_npy *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------------------------------
 * Writing
 */

// write() all of buf, retrying short writes and EINTR.
static bool write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

// The version 1.0 preamble and header for an array, padded with spaces and ending in '\n'
// so that the data starts at a multiple of 64.  Returns its length (a multiple of 64).
static size_t make_header(char *out, size_t size, kiln_dtype dtype, int rank,
                          const int64_t *dims) {
    static const char *descr[] = { "<f4", "<i4", "<i8" };
    char shape[160];
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr[dtype], fmt_shape(shape, sizeof shape, rank, dims));
    size_t total = 10 + (size_t)n + 1;                 // preamble, dict, '\n'
    total = (total + 63) / 64 * 64;
    if (total > size)
        return 0;
    size_t hlen = total - 10;
    memcpy(out, npy_magic, 6);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - 10 - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

// Write the array to a new temporary file next to path (see kiln_rt.h).  The temporary is
// created by mkstemp as PATH.tmp.XXXXXX and given the mode a plain create would (0666 less
// the umask).
int kiln_npy_write_tmp(const char *path, kiln_dtype dtype, int rank, const int64_t *dims,
                       const void *data, char **tmp_path, char *err, size_t errlen) {
    *tmp_path = NULL;
    size_t isz = kiln_dtype_size(dtype), nbytes;
    if (isz == 0)
        return kiln_seterr(err, errlen, "%s: cannot write dtype %d", path, (int)dtype);
    if (rank < 0 || rank > KILN_RT_MAX_RANK)
        return kiln_seterr(err, errlen, "%s: cannot write rank %d (limit %d)", path, rank,
                      KILN_RT_MAX_RANK);
    if (!shape_bytes(rank, dims, isz, &nbytes))
        return kiln_seterr(err, errlen, "%s: cannot write a negative or too large shape", path);
    if (nbytes > 0 && !data)
        return kiln_seterr(err, errlen, "%s: no data to write", path);
    char hdr[512];
    size_t hlen = make_header(hdr, sizeof hdr, dtype, rank, dims);
    if (hlen == 0)
        return kiln_seterr(err, errlen, "%s: header too long", path);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp)
        return kiln_seterr(err, errlen, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return kiln_seterr(err, errlen, "%s: cannot create a temporary file in its directory: %s",
                      path, strerror(e));
    }
    // The runtime is single-threaded here, so reading the umask by setting it is safe.
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    if (!write_all(fd, hdr, hlen) || !write_all(fd, data, nbytes)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        return kiln_seterr(err, errlen, "%s: write failed: %s", path, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return kiln_seterr(err, errlen, "%s: write failed: %s", path, strerror(e));
    }
    *tmp_path = tmp;
    return 0;
}

// Write the array to path atomically: readers see the old file or the whole new one, and a
// failure leaves no temporary behind.  Returns 0, or -1 with a message naming path.
int kiln_npy_write(const char *path, kiln_dtype dtype, int rank, const int64_t *dims,
                   const void *data, char *err, size_t errlen) {
    char *tmp;
    if (kiln_npy_write_tmp(path, dtype, rank, dims, data, &tmp, err, errlen))
        return -1;
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return kiln_seterr(err, errlen, "%s: cannot rename the temporary file into place: %s", path,
                      strerror(e));
    }
    free(tmp);
    return 0;
}
