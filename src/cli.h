/*
 * cli.h - argv -> struct rs_cli. Prints only --help and --version texts and usage errors
 * (to stderr); everything else is main.c's and app.c's. Main thread.
 */
#ifndef RS_CLI_H
#define RS_CLI_H

#include <stdbool.h>
#include <stdint.h>

enum rs_cli_command {
    RS_CMD_HELP,
    RS_CMD_RUN,
    RS_CMD_DEMO,
    RS_CMD_CHECK_CONFIG,
    RS_CMD_INSPECT,
    RS_CMD_SEND,
    RS_CMD_REPLAY,
    RS_CMD_VERSION,
};

#define RS_CLI_SETS_MAX   64 /* --set key=value overrides on one command line */
#define RS_CLI_PARAMS_MAX 16 /* inspect query parameters */

struct rs_cli {
    enum rs_cli_command command;
    bool help_printed;       /* --help was asked and printed: exit 0 */
    const char *config_path; /* -c FILE, or check-config's FILE; borrowed from argv */
    const char *input;       /* send: the JSON lines file, "-" for standard input */
    const char *topic;       /* send --topic, or NULL */
    const char *sets[RS_CLI_SETS_MAX];
    int n_sets;
    /* inspect */
    const char *what;      /* summary (default), metrics, metric, series, open */
    bool table;            /* --table instead of JSON */
    bool dump;             /* --dump: the canonical dump of every database */
    const char *state_dir; /* inspect, replay: --state-dir DIR */
    /* replay */
    const char *from;         /* --from: earliest (default), an ISO-8601 time, or P:O,... */
    const char *to;           /* --to: end (default), a time, or P:O,... */
    const char *topic_suffix; /* --topic-suffix, default ".replay" */
    bool no_output;
    bool in_place;
    bool resume;
    double rate; /* --rate events/s; 0: no limit */
    const char *param_names[RS_CLI_PARAMS_MAX];
    const char *param_values[RS_CLI_PARAMS_MAX];
    int n_params;
    /* demo */
    bool json;
    uint64_t seed;
    uint32_t leads;
    double speed; /* simulated seconds per wall second */
};

/*
 * Parse argv. Returns 0, or RS_EUSAGE after printing what is wrong and a usage line to
 * stderr (exit code 2).
 */
int rs_cli_parse(struct rs_cli *cli, int argc, char **argv);

#endif
