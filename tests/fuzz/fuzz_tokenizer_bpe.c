/* tests/fuzz/fuzz_tokenizer_bpe.c: encode and decode (runtime/tokenizer*.c) with a fixed
 * vocabulary: ../shared/data/gpt2-tokenizer.
 * The harness body, its input format and its checks are in fuzz_tokenizer.h.
 */
#define FUZZ_TOK_NAME "tokenizer_bpe"
#define FUZZ_TOK_PATH "gpt2-tokenizer"
#include "fuzz_tokenizer.h"
