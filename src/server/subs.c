/* subs.c — who follows whom: user id → the streams that asked for that
 * user (?ids= on the presence stream, API.md §7). A change is handed to the
 * streams found here, so its cost grows with the streams interested in it,
 * not with every open stream. Open addressing with linear probing; a
 * removal shifts the entries after it back, so there are no tombstones and
 * a long-running server does not degrade. Not thread-safe: the hub's lock
 * guards it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct slot {
    int64_t user; /* 0: empty (user ids start at 1) */
    uint32_t n, cap;
    void **v; /* the streams following user */
};

struct subs {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
};

static size_t hash(int64_t user, size_t cap)
{
    uint64_t x = (uint64_t)user * 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 17) & (cap - 1);
}

struct subs *subs_new(void)
{
    struct subs *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cap = 1024;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void subs_free(struct subs *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].v);
    free(m->slots);
    free(m);
}

static struct slot *find(struct subs *m, int64_t user)
{
    for (size_t i = hash(user, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].user == user) return &m->slots[i];
        if (!m->slots[i].user) return NULL;
    }
}

static bool grow(struct subs *m)
{
    size_t cap = m->cap * 2;
    struct slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].user) continue;
        size_t j = hash(m->slots[i].user, cap);
        while (slots[j].user)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return true;
}

bool subs_add(struct subs *m, int64_t user, void *stream)
{
    struct slot *s = find(m, user);
    if (!s) {
        if ((m->used + 1) * 2 > m->cap && !grow(m)) return false; /* at most half full */
        size_t i = hash(user, m->cap);
        while (m->slots[i].user)
            i = (i + 1) & (m->cap - 1);
        s = &m->slots[i];
        *s = (struct slot){.user = user};
        m->used++;
    }
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 2;
        void **v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = stream;
    return true;
}

void subs_remove(struct subs *m, int64_t user, void *stream)
{
    struct slot *s = find(m, user);
    if (!s) return;
    for (uint32_t k = 0; k < s->n; k++)
        if (s->v[k] == stream) {
            s->v[k] = s->v[--s->n];
            break;
        }
    if (s->n) return;
    /* The last follower left: empty the slot and shift back the entries
     * that probed past it, so every lookup still finds them. */
    free(s->v);
    size_t i = (size_t)(s - m->slots);
    m->slots[i] = (struct slot){0};
    m->used--;
    for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].user; j = (j + 1) & (m->cap - 1)) {
        size_t home = hash(m->slots[j].user, m->cap);
        /* j's entry may move to i when i lies cyclically in [home, j) */
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            m->slots[j] = (struct slot){0};
            i = j;
        }
    }
}

void *const *subs_get(struct subs *m, int64_t user, size_t *n)
{
    struct slot *s = find(m, user);
    *n = s ? s->n : 0;
    return s ? s->v : NULL;
}
