/* jobs.c — a request handed from its HTTP worker to another thread and
 * back: the writer (presence writes, group-committed) and the login pool
 * (password checks) both take their work from a job_queue. Suspending the
 * connection first matters: the taker may resume it as soon as it is
 * queued. */
#include <stdlib.h>

#include "server.h"

struct write_job *request_job(struct req *r)
{
    if (!r->job && !(r->job = calloc(1, sizeof *r->job)))
        reply_fail(r, 500, NULL, "the server ran out of memory");
    return r->job;
}

void job_queue_push(struct job_queue *q, struct req *r)
{
    r->job->state = JOB_QUEUED;
    r->job->next = NULL;
    MHD_suspend_connection(r->conn);
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->job->next = r;
    else
        q->head = r;
    q->tail = r;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

struct req *job_queue_take(struct job_queue *q)
{
    struct req *r = q->head;
    if (r) {
        q->head = r->job->next;
        if (!q->head) q->tail = NULL;
    }
    return r;
}
