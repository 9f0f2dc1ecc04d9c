/* sage-indexer query: placeholder replaced below. */
#include <stdio.h>
#include "cli.h"
int cmd_query(struct cli *c)
{
    (void)c;
    fprintf(stderr, "sage-indexer query: not built yet\n");
    return 1;
}
