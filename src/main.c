/*
 * main.c - parse argv, load the configuration, run a command, map the result to an exit code
 * (0 ok, 1 runtime failure, 2 bad usage or bad configuration).
 */
#define RS_LOG_MODULE "main"

#include "app.h"
#include "cli.h"
#include "config.h"
#include "demo.h"
#include "err.h"
#include "inspect.h"
#include "kafka_io.h"
#include "log.h"
#include "replay.h"
#include "send.h"
#include "sla.h"
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#ifndef RS_VERSION
#define RS_VERSION "0.0.0-dev"
#endif

extern char **environ;

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static int load_config(struct rs_config *cfg, const struct rs_cli *cli)
{
    struct rs_err err;
    int rc;

    rs_err_clear(&err);
    rs_config_init(cfg);
    rc = rs_config_load(cfg, cli->config_path, environ, &err);
    for (int i = 0; rc == 0 && i < cli->n_sets; i++) {
        char key[256];
        const char *eq = strchr(cli->sets[i], '=');
        size_t len = (size_t)(eq - cli->sets[i]);

        if (len >= sizeof(key)) {
            len = sizeof(key) - 1;
        }
        memcpy(key, cli->sets[i], len);
        key[len] = '\0';
        rc = rs_config_set(cfg, key, eq + 1, "--set", &err);
    }
    if (rc == 0) {
        rc = rs_kafka_check_config(cfg, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "revstream: %s\n", err.msg);
        return EXIT_USAGE;
    }
    rs_log_set_level(cfg->log_level);
    return 0;
}

int main(int argc, char **argv)
{
    struct rs_cli cli;
    struct rs_config cfg;
    int rc;

    if (rs_cli_parse(&cli, argc, argv) != 0) {
        return EXIT_USAGE;
    }
    if (cli.help_printed) {
        return 0;
    }
    switch (cli.command) {
    case RS_CMD_VERSION:
        printf("revstream %s\nlibrdkafka %s\nlibuv %s\nlmdb %s\nmsgpack-c %s\n", RS_VERSION,
               rs_kafka_version(), uv_version_string(), rs_store_lmdb_version(),
               rs_event_msgpack_version());
        return 0;
    case RS_CMD_DEMO: {
        struct rs_demo_options opts = { cli.seed, cli.leads, cli.speed, cli.json };

        rs_log_set_level(RS_LOG_LEVEL_WARN);
        return rs_demo_run(&opts);
    }
    case RS_CMD_CHECK_CONFIG:
        rc = load_config(&cfg, &cli);
        if (rc == 0) {
            rs_config_print(&cfg, stdout);
            fprintf(stderr, "revstream: %s is valid\n", cli.config_path);
        }
        rs_config_release(&cfg);
        return rc;
    case RS_CMD_RUN:
        rc = load_config(&cfg, &cli);
        if (rc == 0) {
            rc = rs_app_run(&cfg);
        }
        rs_config_release(&cfg);
        return rc;
    case RS_CMD_INSPECT:
        rc = load_config(&cfg, &cli);
        if (rc == 0) {
            rc = rs_inspect_run(&cfg, &cli, stdout);
        }
        rs_config_release(&cfg);
        return rc;
    case RS_CMD_REPLAY:
        rc = load_config(&cfg, &cli);
        if (rc == 0) {
            rc = rs_replay_run(&cfg, &cli);
        }
        rs_config_release(&cfg);
        return rc;
    case RS_CMD_SEND:
        rc = load_config(&cfg, &cli);
        if (rc == 0) {
            struct rs_err err;

            rs_err_clear(&err);
            rc = rs_send_run(&cfg, cli.topic, cli.input, &err);
            if (rc != 0) {
                fprintf(stderr, "revstream: %s\n", err.msg);
                rc = rc == RS_EDECODE ? EXIT_USAGE : EXIT_RUNTIME;
            }
        }
        rs_config_release(&cfg);
        return rc;
    case RS_CMD_HELP:
        break;
    }
    return EXIT_USAGE;
}
