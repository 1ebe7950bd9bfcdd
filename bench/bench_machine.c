#include "bench_machine.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void rs_bench_print_machine(int argc, char **argv)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    printf("# command:");
    for (int i = 0; i < argc; i++) {
        printf(" %s", argv[i]);
    }
    printf("\n# nproc: %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            printf("# cpu: %s", strchr(line, ':') + 2);
            break;
        }
    }
    if (f != NULL) {
        (void)fclose(f);
    }
}
