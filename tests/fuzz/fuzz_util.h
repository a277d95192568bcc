/* tests/fuzz/fuzz_util.h: helpers the harnesses share (header-only, all static).
 *
 * Parsers that take a path (spec_load, kiln_tok_load, kiln_main) are fuzzed through files in
 * a private temporary folder: /dev/shm/kiln-fuzz-<name>-XXXXXX when /dev/shm exists (memory,
 * no disk traffic per run), else $TMPDIR or /tmp.  The folder and its files are removed at
 * exit.
 */
#ifndef KILN_FUZZ_UTIL_H
#define KILN_FUZZ_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir[256];

static inline void fuzz_dir_remove(void)
{
    if (!fuzz_dir[0])
        return;
    DIR *d = opendir(fuzz_dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(fuzz_dir);
    fuzz_dir[0] = 0;
}

// Create the temporary folder once; returns its path (exits if it cannot be made).
static inline const char *fuzz_tmpdir(const char *name)
{
    if (fuzz_dir[0])
        return fuzz_dir;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm"
                       : getenv("TMPDIR")                                 ? getenv("TMPDIR")
                                                                          : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/kiln-fuzz-%s-XXXXXX", base, name);
    if (!mkdtemp(fuzz_dir)) {
        perror(fuzz_dir);
        exit(2);
    }
    atexit(fuzz_dir_remove);
    return fuzz_dir;
}

// "<tmpdir>/<file>" in buf.
static inline const char *fuzz_path(char *buf, size_t size, const char *file)
{
    snprintf(buf, size, "%s/%s", fuzz_dir, file);
    return buf;
}

// Write n bytes to path, replacing it; exits on failure (a harness problem, not a finding).
static inline void fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

// A NUL-terminated malloc'd copy of data[0..n).
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}

// Folder of the shared data (tokenizer vocabularies): $KILN_SHARED_DATA, else the folder
// the build baked in (KILN_FUZZ_DATA, ../shared/data beside the checkout).
static inline const char *fuzz_data_dir(void)
{
    const char *env = getenv("KILN_SHARED_DATA");
#ifdef KILN_FUZZ_DATA
    return env && *env ? env : KILN_FUZZ_DATA;
#else
    return env && *env ? env : "../shared/data";
#endif
}

#endif
