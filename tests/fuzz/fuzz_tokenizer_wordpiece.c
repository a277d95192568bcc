/* tests/fuzz/fuzz_tokenizer_wordpiece.c: encode and decode (runtime/tokenizer*.c) with a fixed
 * vocabulary: ../shared/data/bert-base-uncased-vocab/vocab.txt.
 * The harness body, its input format and its checks are in fuzz_tokenizer.h.
 */
#define FUZZ_TOK_NAME "tokenizer_wordpiece"
#define FUZZ_TOK_PATH "bert-base-uncased-vocab/vocab.txt"
#include "fuzz_tokenizer.h"
