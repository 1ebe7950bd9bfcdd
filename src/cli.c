#include "cli.h"

#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_main[] =
    "usage: revstream <command> [options]\n"
    "\n"
    "revstream reads SaaS lifecycle events from Kafka, keeps SLA timers, state and metrics in\n"
    "LMDB, and publishes SLA alerts and metric updates back to Kafka.\n"
    "\n"
    "commands:\n"
    "  run -c FILE          run the service against the Kafka cluster in FILE\n"
    "  demo                 the whole pipeline on an in-process Kafka cluster, no broker needed\n"
    "  check-config FILE    validate FILE and print the effective configuration\n"
    "  inspect -c FILE      print state, metrics and open SLAs from the state store\n"
    "  send -c FILE [IN]    turn JSON lines (one event each) into msgpack events on the topic\n"
    "  replay -c FILE --state-dir DIR\n"
    "                       rebuild state from the events topic into DIR, from a time or offset\n"
    "  version              print the versions of revstream and its libraries\n"
    "\n"
    "'revstream <command> --help' describes a command. Exit codes: 0 ok, 1 runtime failure,\n"
    "2 bad usage or bad configuration (replay: 3 paused).\n";

static const char usage_replay[] =
    "usage: revstream replay -c FILE --state-dir DIR [--from WHEN] [--to WHEN]\n"
    "                        [--topic-suffix SUFFIX | --no-output] [--rate N] [--resume]\n"
    "                        [--in-place]\n"
    "\n"
    "Rebuild state from FILE's events topic into DIR: partitions are assigned directly (no\n"
    "consumer group is joined, nothing is committed), timers fire on event time only, and\n"
    "alerts, metric updates and dead letters go to topics of their own.\n"
    "\n"
    "  --from WHEN          earliest (default), an ISO-8601 time such as 2026-03-02T00:00:00Z\n"
    "                       (the first record at or after it, by Kafka record timestamp), or\n"
    "                       PARTITION:OFFSET pairs separated by ',' (others from earliest)\n"
    "  --to WHEN            end (default: the end offsets when the replay starts), a time, or\n"
    "                       PARTITION:OFFSET pairs (exclusive; others to the end)\n"
    "  --topic-suffix S     publish to topic.alerts, topic.metrics and topic.dlq + S\n"
    "                       (default .replay; the topics must exist)\n"
    "  --no-output          publish nothing: rebuild state only\n"
    "  --rate N             apply at most N events per second\n"
    "  --resume             continue a paused replay in DIR (its range is stored there)\n"
    "  --in-place           allow DIR to be FILE's state.dir (refused while a service runs)\n"
    "\n"
    "Progress: a bar on a terminal, otherwise a line every 5 s; one summary line at the end.\n"
    "SIGINT or SIGTERM pauses: the batch commits, the offsets to resume from are printed, and\n"
    "the exit code is 3. Exit codes: 0 done, 1 failure, 2 bad usage or configuration, 3 paused.\n";

static const char usage_run[] =
    "usage: revstream run -c FILE [--set KEY=VALUE]...\n"
    "\n"
    "Consume the events topic in FILE's consumer group, apply every event to the state store,\n"
    "publish alerts and metric updates through the outbox, and serve HTTP on http.bind\n"
    "(/metrics, /healthz, /readyz, /api/*). SIGINT or SIGTERM: finish the batch, flush the\n"
    "outbox, leave the group and exit 0.\n"
    "\n"
    "  -c, --config FILE    configuration file (or REVSTREAM_CONFIG); see README.md\n"
    "      --set KEY=VALUE  override one key after the file and the environment\n";

static const char usage_demo[] =
    "usage: revstream demo [--json] [--seed N] [--leads N] [--speed X]\n"
    "\n"
    "Start librdkafka's in-process mock cluster, generate a realistic month of a SaaS funnel\n"
    "(a day of leads and touches, some late, some never contacted; qualification,\n"
    "opportunities, wins and losses, handoffs, onboarding, reps with quotas; a few malformed\n"
    "messages) in compressed time, run the same engine as 'run' on it, print each alert as it\n"
    "arrives on the alerts topic, and print a summary with the headline metrics.\n"
    "\n"
    "      --json           print only the summary, as one JSON object\n"
    "      --seed N         generator seed (default 42): the same seed gives the same events\n"
    "      --leads N        number of leads (default 400)\n"
    "      --speed X        simulated seconds per wall-clock second (default 12000)\n";

static const char usage_check[] =
    "usage: revstream check-config FILE\n"
    "\n"
    "Validate FILE (and the REVSTREAM_* environment) as 'run' would, including librdkafka's\n"
    "view of every kafka.* key, then print the effective configuration with secrets masked.\n";

static const char usage_inspect[] =
    "usage: revstream inspect -c FILE [--state-dir DIR] [--table | --dump] [WHAT]\n"
    "                         [--PARAM VALUE ...]\n"
    "\n"
    "Read the state directory named in FILE in a read-only snapshot (safe next to a running\n"
    "engine: LMDB readers never block it) and print, as JSON or with --table as a table:\n"
    "\n"
    "  summary              lead counts by SLA status, offsets, open timers, outbox (default)\n"
    "  metrics              the metric definitions\n"
    "  metric --name N [--grain G] [--bucket B] [--dims K=V,...]\n"
    "                       one metric's value and inputs, summed over every stored partition\n"
    "  series --name N --from B [--to B] [--grain G] [--dims K=V,...]\n"
    "                       a metric over a range of buckets\n"
    "  open [--rule SLA-0N] [--owner ID] [--limit N]\n"
    "                       open SLA instances\n"
    "\n"
    "The same queries as the HTTP API (/api/metric, /api/series, /api/sla/open); buckets are\n"
    "labels such as 2026-03-02, 2026-W10, 2026-03 or 2026-Q1.\n"
    "\n"
    "  --state-dir DIR      read DIR instead of FILE's state.dir (a replay's, say)\n"
    "  --dump               print every database, canonically: one 'db<TAB>key<TAB>value' line\n"
    "                       per entry in hex, in key order, the outbox left out; two stores that\n"
    "                       applied the same events print the same bytes\n";

static const char usage_send[] =
    "usage: revstream send -c FILE [--topic TOPIC] [INPUT]\n"
    "\n"
    "Read INPUT (a file, or standard input when absent or '-'), one JSON object per line in\n"
    "the shape of schemas/ (ts in ms since the epoch), check every line with the engine's own\n"
    "decoder, and only if all are valid produce them as msgpack to TOPIC (default: FILE's\n"
    "topic.events), keyed by account (or lead), and wait until Kafka acknowledged them. A bad\n"
    "line sends nothing and names the file, the line and the problem (exit 2).\n"
    "\n"
    "  -c, --config FILE    configuration file (or REVSTREAM_CONFIG): the cluster and topics\n"
    "      --topic TOPIC    produce there instead of topic.events\n";

static const char usage_version[] = "usage: revstream version\n";

__attribute__((format(printf, 2, 3))) static int usage_error(const char *usage, const char *fmt,
                                                             ...)
{
    va_list ap;

    fputs("revstream: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(usage, stderr);
    return RS_EUSAGE;
}

static int parse_u64(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (text == NULL || *text == '\0' || *text == '-') {
        return RS_EUSAGE;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return RS_EUSAGE;
    }
    *out = v;
    return 0;
}

static bool is_inspect_param(const char *a)
{
    static const char *const names[] = { "--name", "--grain", "--bucket", "--from", "--to",
                                         "--dims", "--rule",  "--owner",  "--limit" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(a, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

int rs_cli_parse(struct rs_cli *cli, int argc, char **argv)
{
    const char *cmd;
    const char *usage;
    int i;

    memset(cli, 0, sizeof(*cli));
    cli->seed = 42;
    cli->leads = 400;
    cli->speed = 12000;
    if (argc < 2) {
        fputs(usage_main, stderr);
        return RS_EUSAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        cli->help_printed = true;
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        cli->command = RS_CMD_VERSION;
        usage = usage_version;
    } else if (strcmp(cmd, "run") == 0) {
        cli->command = RS_CMD_RUN;
        usage = usage_run;
    } else if (strcmp(cmd, "demo") == 0) {
        cli->command = RS_CMD_DEMO;
        usage = usage_demo;
    } else if (strcmp(cmd, "check-config") == 0) {
        cli->command = RS_CMD_CHECK_CONFIG;
        usage = usage_check;
    } else if (strcmp(cmd, "inspect") == 0) {
        cli->command = RS_CMD_INSPECT;
        usage = usage_inspect;
    } else if (strcmp(cmd, "send") == 0) {
        cli->command = RS_CMD_SEND;
        usage = usage_send;
    } else if (strcmp(cmd, "replay") == 0) {
        cli->command = RS_CMD_REPLAY;
        usage = usage_replay;
    } else {
        return usage_error(usage_main, "unknown command '%s'", cmd);
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            cli->help_printed = true;
            return 0;
        }
        if ((cli->command == RS_CMD_RUN || cli->command == RS_CMD_INSPECT ||
             cli->command == RS_CMD_SEND || cli->command == RS_CMD_REPLAY) &&
            (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)) {
            if (!has_value) {
                return usage_error(usage, "option '%s' needs a file", a);
            }
            cli->config_path = argv[++i];
        } else if (cli->command == RS_CMD_RUN && strcmp(a, "--set") == 0) {
            if (!has_value || strchr(argv[i + 1], '=') == NULL) {
                return usage_error(usage, "option '%s' needs KEY=VALUE", a);
            }
            if (cli->n_sets == RS_CLI_SETS_MAX) {
                return usage_error(usage, "too many '%s' options", a);
            }
            cli->sets[cli->n_sets++] = argv[++i];
        } else if (cli->command == RS_CMD_DEMO && strcmp(a, "--json") == 0) {
            cli->json = true;
        } else if (cli->command == RS_CMD_DEMO && strcmp(a, "--seed") == 0) {
            if (!has_value || parse_u64(argv[i + 1], &cli->seed) != 0) {
                return usage_error(usage, "option '%s' needs a whole number", a);
            }
            i++;
        } else if (cli->command == RS_CMD_DEMO && strcmp(a, "--leads") == 0) {
            uint64_t n;

            if (!has_value || parse_u64(argv[i + 1], &n) != 0 || n == 0 || n > 1000000) {
                return usage_error(usage, "option '%s' needs a number from 1 to 1000000", a);
            }
            cli->leads = (uint32_t)n;
            i++;
        } else if (cli->command == RS_CMD_DEMO && strcmp(a, "--speed") == 0) {
            uint64_t n;

            if (!has_value || parse_u64(argv[i + 1], &n) != 0 || n == 0 || n > 1000000) {
                return usage_error(usage, "option '%s' needs a number from 1 to 1000000", a);
            }
            cli->speed = (double)n;
            i++;
        } else if (cli->command == RS_CMD_CHECK_CONFIG && a[0] != '-' && cli->config_path == NULL) {
            cli->config_path = a;
        } else if (cli->command == RS_CMD_INSPECT && strcmp(a, "--table") == 0) {
            cli->table = true;
        } else if (cli->command == RS_CMD_INSPECT && strcmp(a, "--dump") == 0) {
            cli->dump = true;
        } else if ((cli->command == RS_CMD_INSPECT || cli->command == RS_CMD_REPLAY) &&
                   strcmp(a, "--state-dir") == 0) {
            if (!has_value) {
                return usage_error(usage, "option '%s' needs a directory", a);
            }
            cli->state_dir = argv[++i];
        } else if (cli->command == RS_CMD_REPLAY &&
                   (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 ||
                    strcmp(a, "--topic-suffix") == 0)) {
            const char **slot = strcmp(a, "--from") == 0 ? &cli->from
                                : strcmp(a, "--to") == 0 ? &cli->to
                                                         : &cli->topic_suffix;

            if (!has_value) {
                return usage_error(usage, "option '%s' needs a value", a);
            }
            *slot = argv[++i];
        } else if (cli->command == RS_CMD_REPLAY && strcmp(a, "--no-output") == 0) {
            cli->no_output = true;
        } else if (cli->command == RS_CMD_REPLAY && strcmp(a, "--in-place") == 0) {
            cli->in_place = true;
        } else if (cli->command == RS_CMD_REPLAY && strcmp(a, "--resume") == 0) {
            cli->resume = true;
        } else if (cli->command == RS_CMD_REPLAY && strcmp(a, "--rate") == 0) {
            uint64_t n;

            if (!has_value || parse_u64(argv[i + 1], &n) != 0 || n == 0 || n > 100000000) {
                return usage_error(usage, "option '%s' needs events per second, 1 to 100000000", a);
            }
            cli->rate = (double)n;
            i++;
        } else if (cli->command == RS_CMD_INSPECT && a[0] != '-' && cli->what == NULL) {
            static const char *const whats[] = { "summary", "metrics", "metric", "series", "open" };
            size_t w;

            for (w = 0; w < sizeof(whats) / sizeof(whats[0]) && strcmp(a, whats[w]) != 0; w++) {
            }
            if (w == sizeof(whats) / sizeof(whats[0])) {
                return usage_error(usage, "unknown inspect query '%s'", a);
            }
            cli->what = a;
        } else if (cli->command == RS_CMD_INSPECT && is_inspect_param(a)) {
            if (!has_value) {
                return usage_error(usage, "option '%s' needs a value", a);
            }
            if (cli->n_params == RS_CLI_PARAMS_MAX) {
                return usage_error(usage, "too many query options");
            }
            cli->param_names[cli->n_params] = a + 2;
            cli->param_values[cli->n_params++] = argv[++i];
        } else if (cli->command == RS_CMD_SEND && strcmp(a, "--topic") == 0) {
            if (!has_value) {
                return usage_error(usage, "option '%s' needs a topic", a);
            }
            cli->topic = argv[++i];
        } else if (cli->command == RS_CMD_SEND && cli->input == NULL &&
                   (a[0] != '-' || strcmp(a, "-") == 0)) {
            cli->input = a;
        } else {
            return usage_error(usage, "unexpected argument '%s'", a);
        }
    }
    if (cli->command == RS_CMD_CHECK_CONFIG && cli->config_path == NULL) {
        return usage_error(usage, "%s needs a FILE", "check-config");
    }
    if (cli->command == RS_CMD_SEND && cli->input == NULL) {
        cli->input = "-";
    }
    if (cli->command == RS_CMD_INSPECT && cli->what == NULL) {
        cli->what = "summary";
    }
    if (cli->command == RS_CMD_REPLAY && cli->state_dir == NULL) {
        return usage_error(usage, "replay needs --state-dir DIR (its own state directory)");
    }
    if (cli->command == RS_CMD_REPLAY && cli->no_output && cli->topic_suffix != NULL) {
        return usage_error(usage, "--no-output and --topic-suffix exclude each other");
    }
    if (cli->command == RS_CMD_REPLAY && cli->resume && (cli->from != NULL || cli->to != NULL)) {
        return usage_error(usage, "--resume continues the stored range: no --from or --to");
    }
    if ((cli->command == RS_CMD_RUN || cli->command == RS_CMD_INSPECT ||
         cli->command == RS_CMD_SEND || cli->command == RS_CMD_REPLAY) &&
        cli->config_path == NULL) {
        cli->config_path = getenv("REVSTREAM_CONFIG");
        if (cli->config_path == NULL) {
            return usage_error(usage, "%s needs -c FILE (or REVSTREAM_CONFIG)", cmd);
        }
    }
    return 0;
}
