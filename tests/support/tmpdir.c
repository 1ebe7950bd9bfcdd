#define _XOPEN_SOURCE 700 /* nftw */
#include "tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rs_test_tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);

    if (path == NULL) {
        abort();
    }
    (void)snprintf(path, 4096, "%s/revstream-test-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void rs_test_tmpdir_remove(char *path)
{
    if (path == NULL) {
        return;
    }
    (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}
