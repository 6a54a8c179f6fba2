/* thread_block.c — state each worker thread keeps for itself (counters,
 * access lines, kept pages) but that a scrape, a flush or shutdown must
 * reach: every kind has one list of blocks, one per thread that used it. */
#include <stdlib.h>

#include "server.h"

void *thread_block_new(struct thread_blocks *list, size_t size, void (*init)(void *block))
{
    struct thread_block *b = calloc(1, size);
    if (!b) return NULL;
    if (init) init(b); /* before others can see it */
    pthread_mutex_lock(&list->lock);
    b->next = list->head;
    list->head = b;
    pthread_mutex_unlock(&list->lock);
    return b;
}

void thread_blocks_free(struct thread_blocks *list, void (*done)(void *block))
{
    pthread_mutex_lock(&list->lock);
    while (list->head) {
        struct thread_block *n = list->head->next;
        if (done) done(list->head);
        free(list->head);
        list->head = n;
    }
    pthread_mutex_unlock(&list->lock);
}
