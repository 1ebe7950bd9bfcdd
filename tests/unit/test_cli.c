/*
 * test_cli.c - the revstream binary's commands, exit codes and messages, as a user meets
 * them: 0 ok, 1 runtime failure, 2 bad usage or bad configuration. No broker needed: every
 * case here fails (or succeeds) before Kafka is contacted.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    char *dir;
    char out[4096], err[4096], conf[4096];
};

static int cli_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->dir = rs_test_tmpdir_new();
    (void)snprintf(f->out, sizeof(f->out), "%s/out", f->dir);
    (void)snprintf(f->err, sizeof(f->err), "%s/err", f->dir);
    (void)snprintf(f->conf, sizeof(f->conf), "%s/revstream.conf", f->dir);
    *state = f;
    return 0;
}

static int cli_teardown(void **state)
{
    struct fixture *f = *state;

    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* Run revstream with args through sh, stdout and stderr to files; returns the exit code. */
static int run(struct fixture *f, const char *args)
{
    char cmd[16384];
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

    (void)snprintf(cmd, sizeof(cmd), "exec '%s' %s 2>'%s'", RS_BINARY, args, f->err);
    return rs_tb_run(argv, f->out);
}

static void assert_file_has(const char *path, const char *needle)
{
    char *text = rs_tb_slurp(path);

    assert_non_null(text);
    if (strstr(text, needle) == NULL) {
        print_error("'%s' not in:\n%s\n", needle, text);
    }
    assert_non_null(strstr(text, needle));
    free(text);
}

static void test_cli_version_and_help_exit_zero(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(run(f, "version"), 0);
    assert_file_has(f->out, "librdkafka 2.");
    assert_int_equal(run(f, "--help"), 0);
    assert_file_has(f->out, "check-config FILE");
    assert_int_equal(run(f, "run --help"), 0);
    assert_file_has(f->out, "usage: revstream run -c FILE");
    assert_int_equal(run(f, "demo --help"), 0);
    assert_file_has(f->out, "--json");
    assert_int_equal(run(f, "check-config --help"), 0);
    assert_int_equal(run(f, "inspect --help"), 0);
}

static void test_cli_bad_usage_exits_two(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(run(f, ""), 2);
    assert_int_equal(run(f, "teleport"), 2);
    assert_file_has(f->err, "unknown command 'teleport'");
    assert_int_equal(run(f, "run"), 2);
    assert_file_has(f->err, "needs -c FILE");
    assert_int_equal(run(f, "demo --leads 0"), 2);
    assert_int_equal(run(f, "demo --bogus"), 2);
    assert_file_has(f->err, "unexpected argument '--bogus'");
}

/* replay checks its options before it talks to a cluster: these fail without a broker. */
static void test_cli_replay_bad_usage_exits_two(void **state)
{
    struct fixture *f = *state;
    char text[8192], args[8192];

    (void)snprintf(text, sizeof(text),
                   "kafka.bootstrap.servers = 127.0.0.1:1\nkafka.group.id = g\n"
                   "state.dir = %s/live\n",
                   f->dir);
    write_file(f->conf, text);
    assert_int_equal(run(f, "replay --help"), 0);
    assert_file_has(f->out, "--topic-suffix");
    (void)snprintf(args, sizeof(args), "replay -c '%s'", f->conf);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "replay needs --state-dir DIR");
    (void)snprintf(args, sizeof(args),
                   "replay -c '%s' --state-dir '%s/r' --no-output "
                   "--topic-suffix .x",
                   f->conf, f->dir);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "--no-output and --topic-suffix exclude each other");
    (void)snprintf(args, sizeof(args), "replay -c '%s' --state-dir '%s/r' --rate 0", f->conf,
                   f->dir);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "needs events per second");
    (void)snprintf(args, sizeof(args), "replay -c '%s' --state-dir '%s/r' --resume --from earliest",
                   f->conf, f->dir);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "--resume continues the stored range");
    /* The service's own directory is refused before any connection is made. */
    (void)snprintf(args, sizeof(args), "replay -c '%s' --state-dir '%s/live'", f->conf, f->dir);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "is the service's state.dir");
    (void)snprintf(args, sizeof(args), "replay -c '%s' --state-dir '%s/r' --resume", f->conf,
                   f->dir);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "--resume: no paused replay in");
}

static void test_cli_bad_config_names_file_line_key_and_exits_two(void **state)
{
    struct fixture *f = *state;
    char args[8192];

    write_file(f->conf, "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                        "sla.speed_to_lead.high = soon\n");
    (void)snprintf(args, sizeof(args), "check-config '%s'", f->conf);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "revstream.conf:2: key 'sla.speed_to_lead.high'");
    (void)snprintf(args, sizeof(args), "run -c '%s'", f->conf);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "revstream.conf:2:");
}

static void test_cli_bad_librdkafka_property_is_a_config_error(void **state)
{
    struct fixture *f = *state;
    char args[8192];

    write_file(f->conf, "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                        "kafka.group.id = g\n"
                        "kafka.no.such.property = 1\n");
    (void)snprintf(args, sizeof(args), "check-config '%s'", f->conf);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "revstream.conf:3: kafka property 'no.such.property'");
}

static void test_cli_config_contradicting_guarantees_is_refused(void **state)
{
    struct fixture *f = *state;
    char args[8192];

    write_file(f->conf, "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                        "kafka.group.id = g\n"
                        "kafka.producer.enable.idempotence = false\n");
    (void)snprintf(args, sizeof(args), "check-config '%s'", f->conf);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "'enable.idempotence' must be 'true'");
}

static void test_cli_check_config_prints_effective_config_with_secrets_masked(void **state)
{
    struct fixture *f = *state;
    char args[8192];

    write_file(f->conf, "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                        "kafka.group.id = g\n");
    (void)snprintf(args, sizeof(args), "check-config '%s'", f->conf);
    assert_int_equal(setenv("REVSTREAM_KAFKA_SASL_PASSWORD", "hunter2", 1), 0);
    assert_int_equal(setenv("REVSTREAM_SLA_SPEED_TO_LEAD_HIGH", "7m", 1), 0);
    assert_int_equal(run(f, args), 0);
    assert_int_equal(unsetenv("REVSTREAM_KAFKA_SASL_PASSWORD"), 0);
    assert_int_equal(unsetenv("REVSTREAM_SLA_SPEED_TO_LEAD_HIGH"), 0);
    assert_file_has(f->out, "sla.speed_to_lead.high = 7m");
    assert_file_has(f->out, "kafka.sasl.password = ***");
    {
        char *text = rs_tb_slurp(f->out);

        assert_null(strstr(text, "hunter2"));
        free(text);
    }
}

static void test_cli_inspect_of_a_fresh_state_dir_reports_nothing(void **state)
{
    struct fixture *f = *state;
    char text[8192], args[8192];

    (void)snprintf(text, sizeof(text),
                   "kafka.bootstrap.servers = 127.0.0.1:9092\nkafka.group.id = g\n"
                   "state.dir = %s/state\n",
                   f->dir);
    write_file(f->conf, text);
    (void)snprintf(args, sizeof(args), "inspect -c '%s'", f->conf);
    assert_int_equal(run(f, args), 0);
    assert_file_has(f->out, "\"created\":0");
    assert_file_has(f->out, "\"offsets\":[]");
}

/* send checks every line before it connects: a bad file fails here without a broker. */
static void test_cli_send_names_the_bad_line_and_sends_nothing(void **state)
{
    struct fixture *f = *state;
    char input[4200], args[10000];

    write_file(f->conf, "kafka.bootstrap.servers = 127.0.0.1:1\nkafka.group.id = g\n");
    (void)snprintf(input, sizeof(input), "%s/events.jsonl", f->dir);
    write_file(input, "{\"type\":\"lead.disqualified\",\"id\":\"e1\",\"ts\":1,\"lead_id\":\"L\","
                      "\"reason\":\"spam\"}\n"
                      "\n"
                      "{\"type\":\"lead.created\",\"id\":\"e2\",\"ts\":1,\"lead_id\":\"L\"}\n");
    (void)snprintf(args, sizeof(args), "send -c '%s' '%s'", f->conf, input);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "events.jsonl:3: missing required field 'channel'");
    assert_file_has(f->err, "(missing_field)");

    write_file(input, "{\"type\": \"lead.created\",\n");
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "events.jsonl:1: not JSON");

    write_file(input, "[1, 2]\n");
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "events.jsonl:1: expected a JSON object");

    (void)snprintf(args, sizeof(args), "send -c '%s' '%s/none.jsonl'", f->conf, f->dir);
    assert_int_equal(run(f, args), 1);
    assert_file_has(f->err, "none.jsonl': No such file or directory");
}

/* Every new type, with arrays and booleans, passes send's check; line 17 is the first bad one. */
static void test_cli_send_accepts_every_event_type_and_names_the_first_bad_line(void **state)
{
    struct fixture *f = *state;
    char input[4200], args[10000];

    write_file(f->conf, "kafka.bootstrap.servers = 127.0.0.1:1\nkafka.group.id = g\n");
    (void)snprintf(input, sizeof(input), "%s/events.jsonl", f->dir);
    write_file(
        input,
        "{\"type\":\"lead.assigned\",\"id\":\"e1\",\"ts\":1,\"lead_id\":\"L\",\"owner_id\":\"r\"}\n"
        "{\"type\":\"lead.qualified\",\"id\":\"e2\",\"ts\":1,\"lead_id\":\"L\",\"stage\":\"MQL\"}\n"
        "{\"type\":\"lead.recycled\",\"id\":\"e3\",\"ts\":1,\"lead_id\":\"L\"}\n"
        "{\"type\":\"lead.reopened\",\"id\":\"e4\",\"ts\":1,\"lead_id\":\"L\",\"reason\":null}\n"
        "{\"type\":\"opportunity.created\",\"id\":\"e5\",\"ts\":1,\"account\":\"A\","
        "\"opportunity_id\":\"O\",\"owner_id\":\"r\",\"deal_type\":\"new\",\"amount_minor\":100,"
        "\"currency\":\"EUR\",\"stage\":\"discovery\"}\n"
        "{\"type\":\"opportunity.stage_changed\",\"id\":\"e6\",\"ts\":2,\"opportunity_id\":\"O\","
        "\"from_stage\":\"discovery\",\"to_stage\":\"proposal\",\"amount_minor\":120}\n"
        "{\"type\":\"opportunity.closed\",\"id\":\"e7\",\"ts\":3,\"opportunity_id\":\"O\","
        "\"outcome\":\"won\",\"amount_minor\":120,\"tcv_minor\":360,\"currency\":\"EUR\","
        "\"close_date\":2}\n"
        "{\"type\":\"opportunity.reopened\",\"id\":\"e8\",\"ts\":4,\"opportunity_id\":\"O\"}\n"
        "{\"type\":\"handoff.started\",\"id\":\"e9\",\"ts\":5,\"account\":\"A\","
        "\"opportunity_id\":\"O\",\"csm_id\":\"c\"}\n"
        "{\"type\":\"handoff.completed\",\"id\":\"e10\",\"ts\":6,\"account_id\":\"A\","
        "\"opportunity_id\":\"O\",\"checklist_complete\":true}\n"
        "{\"type\":\"onboarding.milestone\",\"id\":\"e11\",\"ts\":7,\"account\":\"A\","
        "\"milestone\":\"first_value\"}\n"
        "{\"type\":\"onboarding.paused\",\"id\":\"e12\",\"ts\":8,\"account\":\"A\","
        "\"reason\":\"waiting_on_customer\"}\n"
        "{\"type\":\"onboarding.resumed\",\"id\":\"e13\",\"ts\":9,\"account\":\"A\"}\n"
        "{\"type\":\"rep.onboarded\",\"id\":\"e14\",\"ts\":1,\"rep_id\":\"r\",\"start_date\":1}\n"
        "{\"type\":\"rep.quota_set\",\"id\":\"e15\",\"ts\":1,\"rep_id\":\"r\",\"period\":\"2026-"
        "03\","
        "\"quota_minor\":5000000,\"currency\":\"USD\",\"ramp_schedule\":[25,50,75,100]}\n"
        "{\"type\":\"rep.terminated\",\"id\":\"e16\",\"ts\":10,\"rep_id\":\"r\"}\n"
        "{\"type\":\"rep.quota_set\",\"id\":\"e17\",\"ts\":1,\"rep_id\":\"r\",\"period\":\"2026-"
        "03\","
        "\"quota_minor\":5000000,\"currency\":\"USD\",\"ramp_schedule\":[25,1001]}\n");
    (void)snprintf(args, sizeof(args), "send -c '%s' '%s'", f->conf, input);
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "events.jsonl:17: field 'ramp_schedule': item 1 is 1001, expected "
                            "0..1000 (percent) (bad_value)");

    write_file(input, "{\"type\":\"handoff.completed\",\"id\":\"e1\",\"ts\":6,\"account\":\"A\","
                      "\"opportunity_id\":\"O\",\"checklist_complete\":\"yes\"}\n");
    assert_int_equal(run(f, args), 2);
    assert_file_has(f->err, "events.jsonl:1: field 'checklist_complete': expected a bool, got str "
                            "(wrong_type)");
}

#define T(name) cmocka_unit_test_setup_teardown(name, cli_setup, cli_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cli_version_and_help_exit_zero),
        T(test_cli_bad_usage_exits_two),
        T(test_cli_replay_bad_usage_exits_two),
        T(test_cli_bad_config_names_file_line_key_and_exits_two),
        T(test_cli_bad_librdkafka_property_is_a_config_error),
        T(test_cli_config_contradicting_guarantees_is_refused),
        T(test_cli_check_config_prints_effective_config_with_secrets_masked),
        T(test_cli_inspect_of_a_fresh_state_dir_reports_nothing),
        T(test_cli_send_names_the_bad_line_and_sends_nothing),
        T(test_cli_send_accepts_every_event_type_and_names_the_first_bad_line),
    };

    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
