/* tests/fuzz/fuzz_tokenizer_char.c: encode and decode (runtime/tokenizer*.c) with a fixed
 * vocabulary: ../shared/data/gpt2-shakespeare-char/vocab.json.
 * The harness body, its input format and its checks are in fuzz_tokenizer.h.
 */
#define FUZZ_TOK_NAME "tokenizer_char"
#define FUZZ_TOK_PATH "gpt2-shakespeare-char/vocab.json"
#include "fuzz_tokenizer.h"
