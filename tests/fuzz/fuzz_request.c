/* Fuzz target: searchd's request parsing. The input is tried both as a GET
 * query string and as a POST body; whatever is accepted must satisfy the
 * limits the handler relies on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "../../searchd/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request_limits lim = { 1024, 1000 };
    struct search_req rq;
    struct request_error e;
    char *qs = malloc(size + 1);
    if (!qs)
        return 0;
    memcpy(qs, data, size);
    qs[size] = '\0';
    for (int form = 0; form < 2; form++) {
        int rc = form ? request_from_json((const char *)data, size, &lim, &rq, &e)
                      : request_from_query(qs, &lim, &rq, &e);
        /* a query needs words or a vector; a vector is 1 to REQUEST_MAX_DIM
         * finite floats, never with mode bm25 */
        if (rc == 0 && (!rq.q || (!*rq.q && !rq.vector) || strlen(rq.q) > 1024 || rq.k < 1 ||
                        rq.k > 1000 || rq.offset < 0 || rq.offset > REQUEST_MAX_OFFSET ||
                        !(rq.w_bm25 >= 0 && rq.w_bm25 <= REQUEST_MAX_WEIGHT) ||
                        !(rq.w_dense >= 0 && rq.w_dense <= REQUEST_MAX_WEIGHT) ||
                        rq.oversample < 0 || rq.oversample > REQUEST_MAX_OVERSAMPLE ||
                        rq.ef < 0 || rq.ef > REQUEST_MAX_EF || (unsigned)rq.dense > SAGE_DENSE_HNSW))
            abort();
        if (rc == 0 && rq.vector) {
            if (rq.dim < 1 || rq.dim > REQUEST_MAX_DIM ||
                (rq.has_mode && rq.mode == SAGE_MODE_BM25))
                abort();
            for (size_t i = 0; i < rq.dim; i++)
                if (!isfinite(rq.vector[i]))
                    abort();
        }
        if (rc < 0 && (e.status < 400 || e.status > 599 || !e.code))
            abort();
        request_release(&rq);
    }
    free(qs);
    return 0;
}
