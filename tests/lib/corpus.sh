# shellcheck shell=bash
# Synthetic corpora for the end-to-end tests (sourced after tap.sh).
#   corpus SEED N MARK   N JSONL documents, each with the word MARK and 60
#                        words drawn from a small vocabulary with two random
#                        letters added; the same for the same SEED
corpus() {
    awk -v seed="$1" -v n="$2" -v mark="$3" 'BEGIN {
        srand(seed)
        split("the of index swap search token query river mountain apple garden signal " \
              "bridge engine copper violet harbor lantern meadow orbit", w, " ")
        for (i = 0; i < n; i++) {
            t = mark
            for (j = 0; j < 60; j++)
                t = t " " w[int(rand() * 20) + 1] sprintf("%c%c", 97 + int(rand() * 26), 97 + int(rand() * 26))
            printf "{\"id\":\"%s%d\",\"title\":\"%s doc %d\",\"text\":\"%s\"}\n", mark, i, mark, i, t
        }
    }'
}
