/* progress.c — one line of progress on a terminal for the long commands
 * (copy, seed, migrations): what is being done, how much of it, the rate
 * and the time left. The library reports through usersd_config.progress
 * and never prints; this draws its reports on stderr, only when stderr is
 * a terminal (scripts and logs see nothing but the final summary), as one
 * line rewritten in place with \r at most four times a second. A ticker
 * thread redraws the line too, so a single long statement (an index build,
 * a migration that rewrites a table) still shows its time passing.
 * Migration steps are shown only once they have run for a second, and
 * each that took longer leaves one line saying so (the tests shorten the
 * second with USERSD_PROGRESS_SLOW_MS). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DRAW_EVERY 0.25 /* seconds between redraws */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t ticker;
    bool ticking, stop;
    const char *cmd;
    bool active; /* a step is under way */
    bool shown;  /* a progress line is on the screen */
    enum usersd_task task;
    const char *step;
    int64_t done, total;
    double started, drawn; /* monotonic seconds: the step's start, the last draw */
    double slow;           /* a migration step is shown (and reported) after this many seconds */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .slow = 1.0};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1234567 as "1,234,567". */
static void thousands(char *out, size_t size, int64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? 0 : v));
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < size; i++) {
        if (i && (n - i) % 3 == 0 && o + 2 < size) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
}

/* A duration as "42 s", "3 min 5 s" or "2 h 7 min". */
static void duration(char *out, size_t size, double s)
{
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t < 60)
        snprintf(out, size, "%ld s", t);
    else if (t < 3600)
        snprintf(out, size, "%ld min %ld s", t / 60, t % 60);
    else
        snprintf(out, size, "%ld h %ld min", t / 3600, t % 3600 / 60);
}

static bool is_migration(void)
{
    return g.task == USERSD_TASK_MIGRATE;
}

/* The line for the current state (lock held). Rows show a rate and the time
 * left; a few indexes or migrations show the time spent on this one. */
static void format(char *line, size_t size, double t)
{
    char done[32], total[32], tail[64] = "";
    double elapsed = t - g.started;
    thousands(done, sizeof done, is_migration() ? g.done + 1 : g.done);
    thousands(total, sizeof total, g.total);
    int n = g.total > 0 ? snprintf(line, size, "usersd %s: %s %s of %s", g.cmd, g.step, done, total)
                        : snprintf(line, size, "usersd %s: %s %s", g.cmd, g.step, done);
    if (n < 0 || (size_t)n >= size) return;
    if (g.done >= 1000 || g.total >= 1000) {
        double rate = elapsed > 0.05 ? (double)g.done / elapsed : 0;
        char r[32], left[32];
        if (g.total > 0) snprintf(tail, sizeof tail, " (%d %%)", (int)(g.done * 100 / g.total));
        if (rate > 0) {
            thousands(r, sizeof r, (int64_t)rate);
            size_t k = strlen(tail);
            snprintf(tail + k, sizeof tail - k, ", %s/s", r);
            if (g.total > g.done) {
                duration(left, sizeof left, (double)(g.total - g.done) / rate);
                k = strlen(tail);
                snprintf(tail + k, sizeof tail - k, ", %s left", left);
            }
        }
    } else {
        char d[32];
        duration(d, sizeof d, elapsed);
        snprintf(tail, sizeof tail, ", %s", d);
    }
    snprintf(line + n, size - (size_t)n, "%s", tail);
}

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* Redraws the line in place (lock held), cut to the terminal's width so it
 * never wraps (a wrapped line cannot be rewritten with \r). */
static void draw(double t)
{
    char line[256], out[272];
    format(line, sizeof line, t);
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && ws.ws_col <= sizeof line)
        line[ws.ws_col - 1] = 0;
    snprintf(out, sizeof out, "\r%s\033[K", line);
    put(out);
    g.shown = true;
    g.drawn = t;
}

static void clear_line(void)
{
    if (g.shown) put("\r\033[K");
    g.shown = false;
}

/* Ends the current step (lock held); a migration step that took longer
 * than SLOW_STEP leaves a line. */
static void end_step(double t)
{
    if (g.active && is_migration() && t - g.started >= g.slow) {
        char line[128], d[32];
        snprintf(d, sizeof d, "%.1f s", t - g.started);
        snprintf(line, sizeof line, "usersd %s: migration %lld of %lld took %s\n", g.cmd,
                 (long long)g.done + 1, (long long)g.total, d);
        clear_line();
        put(line);
    }
    g.active = false;
}

static bool due(double t)
{
    return g.active && t - g.drawn >= DRAW_EVERY && (!is_migration() || t - g.started >= g.slow);
}

static void *tick(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    while (!g.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(DRAW_EVERY * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g.wake, &g.lock, &until);
        double t = now_s();
        if (!g.stop && due(t)) draw(t);
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

static void report(void *ctx, const struct usersd_progress *p)
{
    (void)ctx;
    double t = now_s();
    pthread_mutex_lock(&g.lock);
    bool fresh = !g.active || p->task != g.task || p->step != g.step ||
                 (p->task == USERSD_TASK_MIGRATE && p->done != g.done);
    if (fresh) {
        end_step(t);
        g.task = p->task;
        g.step = p->step;
        g.started = t;
        g.active = !(p->task == USERSD_TASK_MIGRATE && p->done >= p->total);
    }
    g.done = p->done;
    g.total = p->total;
    if (!g.active)
        clear_line();
    else if (due(t))
        draw(t);
    if (g.active && !g.ticking) g.ticking = pthread_create(&g.ticker, NULL, tick, NULL) == 0;
    pthread_mutex_unlock(&g.lock);
}

void progress_setup(struct usersd_config *cfg, const char *cmd)
{
    if (!isatty(STDERR_FILENO)) return;
    /* For the tests, which have no migration slow enough to show. */
    const char *slow = getenv("USERSD_PROGRESS_SLOW_MS");
    if (slow && *slow) g.slow = (double)strtol(slow, NULL, 10) / 1000.0;
    g.cmd = cmd;
    cfg->progress = report;
    cfg->progress_ctx = NULL;
}

void progress_end(void)
{
    pthread_mutex_lock(&g.lock);
    end_step(now_s());
    clear_line();
    bool join = g.ticking;
    g.stop = true;
    pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.lock);
    if (join) pthread_join(g.ticker, NULL);
    pthread_mutex_lock(&g.lock);
    g.ticking = g.stop = false;
    pthread_mutex_unlock(&g.lock);
}
