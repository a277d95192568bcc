/* kiln_text.h: the text front ends of a model binary (internal to the runtime).
 *
 * kiln_main hands the command line to kiln_text_main when it asks for text rather than .npy
 * files (-p, --text, --embed).  The model's spec says which tensors play which part (its
 * `text:` section, kiln_model.text): the token-ids input, the padding mask and token types
 * when the model takes them, the logits or hidden-state output.  Three jobs:
 *
 *   generate   -p PROMPT: sample -n tokens, streaming the text     (text.c)
 *   fill_mask  --text "... [MASK] ...": the top tokens per [MASK]   (text_bert.c)
 *   embed      --embed --text T | --input-file F: one vector per text, --pool mean|cls
 *                                                                  (text_bert.c)
 *
 * Each prints `MODEL: error: ...` and returns 1 (2 for usage errors) on failure, 0 on
 * success; nothing exits.
 */
#ifndef KILN_TEXT_H
#define KILN_TEXT_H

#include "kiln_rt.h"
#include "kiln_sample.h"
#include "kiln_tok.h"

typedef struct {
    const char *weights;        // --weights
    const char *tokenizer;      // --tokenizer PATH (kiln_tok_load)
    const char *prompt;         // -p / --prompt TEXT (generate)
    const char *text;           // --text TEXT (fill_mask, embed)
    const char *input_file;     // --input-file F: one text per line (embed)
    const char *output;         // --output FILE.npy (embed: [n_texts, width] f32)
    int n_new;                  // -n N: tokens to generate (default 64)
    kiln_sample_params sample;  // --temp --top-k --top-p --repeat-penalty --seed
    bool print_ids;             // --ids: print generated ids, not text
    bool interactive;           // --interactive: read prompts from stdin, keep the context
    bool embed;                 // --embed
    const char *pool;           // --pool mean|cls (default mean)
    int top;                    // --top N: fill-mask candidates per mask (default 5)
    int threads;                // --threads N (0: default)
} kiln_text_args;

// Parse the text command line and run the job it asks for.
int kiln_text_main(int argc, char **argv, const kiln_model *m);

// Whether argv asks for a text job (has -p, --prompt, --text, --embed or --interactive).
bool kiln_text_wanted(int argc, char **argv);

// The jobs, after parsing.  inst is open on a->weights; tok is loaded from a->tokenizer.
int kiln_text_generate(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                       const kiln_text_args *a);
int kiln_text_fill_mask(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                        const kiln_text_args *a);
int kiln_text_embed(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                    const kiln_text_args *a);

// Print "MODEL: error: ..." to stderr; returns status.
int kiln_text_error(const kiln_model *m, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
