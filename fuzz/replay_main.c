/* replay_main.c — a harness without libFuzzer (make test builds it with gcc
 * and ASan/UBSan): every file named on the command line, or found in a
 * directory named there, is fed once to LLVMFuzzerTestOneInput, in name
 * order, so a replay is deterministic. A broken invariant aborts; replaying
 * nothing is a failure too (a corpus went missing). */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(1);
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    CHECK(buf != NULL);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            buf = realloc(buf, cap *= 2);
            CHECK(buf != NULL);
        }
    }
    fclose(f);
    /* An exact-size copy, so ASan sees a read past the input's end. */
    uint8_t *exact = malloc(len ? len : 1);
    CHECK(exact != NULL);
    if (len) memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
}

/* Runs path (a file, or a directory's regular files); returns how many. */
static size_t run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: no such file or directory: %s\n", path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return 1;
    }
    DIR *d = opendir(path);
    CHECK(d != NULL);
    char **names = NULL;
    size_t count = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (count == cap) {
            names = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
            CHECK(names != NULL);
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[count] = malloc(len);
        CHECK(names[count] != NULL);
        snprintf(names[count], len, "%s/%s", path, e->d_name);
        count++;
    }
    closedir(d);
    if (count) qsort(names, count, sizeof *names, by_name);
    size_t ran = 0;
    for (size_t i = 0; i < count; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            run_file(names[i]);
            ran++;
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    for (int i = 1; i < argc; i++)
        ran += run_path(argv[i]);
    printf("replayed %zu inputs\n", ran);
    return ran ? 0 : 1;
}
