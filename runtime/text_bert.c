/* text_bert.c: fill-mask and embeddings (placeholder until the BERT front ends land). */
#include "kiln_text.h"

int kiln_text_fill_mask(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                        const kiln_text_args *a) {
    (void)inst, (void)tok, (void)a;
    return kiln_text_error(m, 1, "fill-mask is not available in this build");
}

int kiln_text_embed(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                    const kiln_text_args *a) {
    (void)inst, (void)tok, (void)a;
    return kiln_text_error(m, 1, "--embed is not available in this build");
}
