/*
 * bench_machine.h - what every benchmark prints before its figures: the command that
 * produced them and the machine they were measured on (a figure without both is a rumour).
 */
#ifndef RS_BENCH_MACHINE_H
#define RS_BENCH_MACHINE_H

/* Print "# command: ...", "# nproc: N" and "# cpu: MODEL" to stdout. */
void rs_bench_print_machine(int argc, char **argv);

#endif
