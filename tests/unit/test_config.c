#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define RS_LOG_MODULE "test_config" /* config.h includes log.h */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files, directories and environment strings one test may create; all go in teardown. */
#define MAX_FILES 8
#define MAX_ENV   8
#define DIR_CAP   256 /* a temp dir path; longer TMPDIRs fail setup rather than truncate */
#define PATH_CAP  (DIR_CAP + 32)

struct fixture {
    char dir[DIR_CAP];
    char files[MAX_FILES][PATH_CAP];
    size_t file_count;
    char subdir[PATH_CAP]; /* "" unless a test made one */
    char *env[MAX_ENV + 1];
    struct rs_config cfg;
    struct rs_err err;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    const char *base = getenv("TMPDIR");
    int n;

    if (fx == NULL) {
        return -1;
    }
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    n = snprintf(fx->dir, sizeof(fx->dir), "%s/rs_test_config.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(fx->dir) || mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    rs_config_init(&fx->cfg);
    rs_err_clear(&fx->err);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = 0;

    for (size_t i = 0; i < fx->file_count; i++) {
        rc |= unlink(fx->files[i]);
    }
    if (fx->subdir[0] != '\0') {
        rc |= rmdir(fx->subdir);
    }
    rc |= rmdir(fx->dir);
    for (size_t i = 0; fx->env[i] != NULL; i++) {
        free(fx->env[i]);
    }
    rs_config_release(&fx->cfg);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* Write `len` bytes to a new file in the fixture's directory; returns its path. */
static const char *write_file_n(struct fixture *fx, const char *text, size_t len)
{
    char *path;
    FILE *fp;
    int fd;

    assert_true(fx->file_count < MAX_FILES);
    path = fx->files[fx->file_count];
    memcpy(path, fx->dir, sizeof(fx->dir));
    strcat(path, "/revstream.XXXXXX"); /* fits: PATH_CAP leaves 32 bytes after the dir */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fx->file_count++;
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static const char *write_file(struct fixture *fx, const char *text)
{
    return write_file_n(fx, text, strlen(text));
}

/* A NULL-terminated environment the fixture owns, as rs_config_load() takes it. */
static char *const *make_env(struct fixture *fx, const char *const *vars)
{
    size_t i = 0;

    for (; vars[i] != NULL; i++) {
        assert_true(i < MAX_ENV);
        fx->env[i] = strdup(vars[i]);
        assert_non_null(fx->env[i]);
    }
    fx->env[i] = NULL;
    return fx->env;
}

/* Write `text` to a file and load it with no environment; returns the code. */
static int load_text(struct fixture *fx, const char *text, const char **path)
{
    *path = write_file(fx, text);
    return rs_config_load(&fx->cfg, *path, NULL, &fx->err);
}

static void assert_msg_has(const struct rs_err *err, const char *needle)
{
    if (strstr(err->msg, needle) == NULL) {
        fail_msg("error message '%s' lacks '%s'", err->msg, needle);
    }
}

static void assert_msg_lacks(const struct rs_err *err, const char *needle)
{
    if (strstr(err->msg, needle) != NULL) {
        fail_msg("error message '%s' holds '%s'", err->msg, needle);
    }
}

/* The message is exactly "<path>:<line>: <rest>". */
static void assert_msg_at(const struct rs_err *err, const char *path, int line, const char *rest)
{
    char want[RS_ERR_MSG_MAX];

    (void)snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
    assert_string_equal(err->msg, want);
}

static const struct rs_kafka_prop *kafka_prop(const struct rs_config *cfg, enum rs_kafka_role role,
                                              const char *name)
{
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (cfg->kafka[i].role == role && strcmp(cfg->kafka[i].name, name) == 0) {
            return &cfg->kafka[i];
        }
    }
    return NULL;
}

/* rs_config_print() into a string the caller frees. */
static char *print_to_string(const struct rs_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);

    assert_non_null(fp);
    rs_config_print(cfg, fp);
    assert_int_equal(fclose(fp), 0);
    return text;
}

/* ---- defaults and valid files ---- */

static void test_config_init_sets_documented_defaults(void **state)
{
    const struct rs_config *cfg = &((struct fixture *)*state)->cfg;

    assert_null(cfg->path);
    assert_int_equal(cfg->log_level, RS_LOG_LEVEL_INFO);
    assert_int_equal(cfg->kafka_count, 0);
    assert_string_equal(cfg->topic_events, "revops.events");
    assert_string_equal(cfg->topic_alerts, "revops.alerts");
    assert_string_equal(cfg->topic_dlq, "revops.dlq");
    assert_string_equal(cfg->state_dir, "./revstream-state");
    assert_int_equal(cfg->state_map_size_mb, 1024);
    assert_int_equal(cfg->state_sync_ms, 1000);
    assert_int_equal(cfg->batch_max_events, 5000);
    assert_int_equal(cfg->batch_max_ms, 20);
    assert_int_equal(cfg->event_max_bytes, 1048576);
    assert_int_equal(cfg->dedup_window_ms, INT64_C(7) * 86400 * 1000);
    assert_int_equal(cfg->max_out_of_orderness_ms, 10 * 60 * 1000);
    assert_int_equal(cfg->tick_ms, 100);
    assert_int_equal(cfg->lead_threshold_ms[RS_TIER_HIGH], 5 * 60 * 1000);
    assert_int_equal(cfg->lead_threshold_ms[RS_TIER_MQL], 60 * 60 * 1000);
    assert_int_equal(cfg->lead_threshold_ms[RS_TIER_LOW], 24 * 60 * 60 * 1000);
    assert_int_equal(cfg->warning_pct, 80);
    assert_int_equal(cfg->escalate_pct, 200);
    assert_null(rs_config_origin(cfg, "batch.max_events"));
    assert_int_equal(rs_config_validate(cfg, NULL), 0);
}

static void test_config_load_full_file_sets_every_key(void **state)
{
    struct fixture *fx = *state;
    struct rs_config *cfg = &fx->cfg;
    char origin[PATH_CAP + 8];
    const char *path;

    assert_int_equal(load_text(fx,
                               "log.level = debug\n"
                               "topic.events = crm.events\n"
                               "topic.alerts = crm.alerts\n"
                               "topic.dlq = crm.dlq\n"
                               "state.dir = /srv/revstream\n"
                               "state.map_size_mb = 4096\n"
                               "state.sync_interval = 250ms\n"
                               "batch.max_events = 10000\n"
                               "batch.max_time = 50ms\n"
                               "event.max_bytes = 65536\n"
                               "time.max_out_of_orderness = 2h\n"
                               "time.tick = 1s\n"
                               "sla.speed_to_lead.high = 10m\n"
                               "sla.speed_to_lead.mql = 2h\n"
                               "sla.speed_to_lead.low = 2d\n"
                               "sla.warning_pct = 75\n"
                               "sla.escalate_pct = 300\n"
                               "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                               "kafka.group.id = revstream\n",
                               &path),
                     0);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->log_level, RS_LOG_LEVEL_DEBUG);
    assert_string_equal(cfg->topic_events, "crm.events");
    assert_string_equal(cfg->topic_alerts, "crm.alerts");
    assert_string_equal(cfg->topic_dlq, "crm.dlq");
    assert_string_equal(cfg->state_dir, "/srv/revstream");
    assert_int_equal(cfg->state_map_size_mb, 4096);
    assert_int_equal(cfg->state_sync_ms, 250);
    assert_int_equal(cfg->batch_max_events, 10000);
    assert_int_equal(cfg->batch_max_ms, 50);
    assert_int_equal(cfg->event_max_bytes, 65536);
    assert_int_equal(cfg->max_out_of_orderness_ms, 2 * 60 * 60 * 1000);
    assert_int_equal(cfg->tick_ms, 1000);
    assert_int_equal(cfg->lead_threshold_ms[RS_TIER_HIGH], 10 * 60 * 1000);
    assert_int_equal(cfg->lead_threshold_ms[RS_TIER_MQL], 2 * 60 * 60 * 1000);
    assert_int_equal(cfg->lead_threshold_ms[RS_TIER_LOW], 2 * 24 * 60 * 60 * 1000);
    assert_int_equal(cfg->warning_pct, 75);
    assert_int_equal(cfg->escalate_pct, 300);
    assert_int_equal(cfg->kafka_count, 2);
    (void)snprintf(origin, sizeof(origin), "%s:8", path);
    assert_string_equal(rs_config_origin(cfg, "batch.max_events"), origin);
    (void)snprintf(origin, sizeof(origin), "%s:19", path);
    assert_string_equal(rs_config_origin(cfg, "kafka.group.id"), origin);
}

static void test_config_load_skips_comments_and_blank_lines_and_strips_quotes(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx,
                               "\xEF\xBB\xBF# a byte order mark, then a comment\n"
                               "   # an indented comment\n"
                               "\t\n"
                               "\n"
                               "state.dir = \"  spaced dir  \"\n"
                               "topic.events=crlf.events\r\n"
                               "  batch.max_events\t=\t42  \n"
                               "kafka.sasl.password = pa#ss # part of the value\n"
                               "kafka.client.id = \"say \"hi\"\"\n"
                               "# the end, with no newline",
                               &path),
                     0);
    assert_string_equal(fx->cfg.state_dir, "  spaced dir  ");
    assert_string_equal(fx->cfg.topic_events, "crlf.events");
    assert_int_equal(fx->cfg.batch_max_events, 42);
    assert_string_equal(kafka_prop(&fx->cfg, RS_KAFKA_BOTH, "sasl.password")->value,
                        "pa#ss # part of the value");
    assert_string_equal(kafka_prop(&fx->cfg, RS_KAFKA_BOTH, "client.id")->value, "say \"hi\"");
}

static void test_config_load_empty_file_keeps_defaults(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "", &path), 0);
    assert_int_equal(fx->cfg.batch_max_events, 5000);
    assert_string_equal(fx->cfg.path, path);
}

static void test_config_load_accepts_a_line_of_exactly_64_kib(void **state)
{
    struct fixture *fx = *state;
    size_t len = 65536;
    char *text = malloc(len + 2);
    const char *path;

    assert_non_null(text);
    memcpy(text, "kafka.client.id = ", 18);
    memset(text + 18, 'x', len - 18);
    text[len] = '\n';
    path = write_file_n(fx, text, len + 1);
    free(text);
    assert_int_equal(rs_config_load(&fx->cfg, path, NULL, &fx->err), 0);
    assert_int_equal(strlen(kafka_prop(&fx->cfg, RS_KAFKA_BOTH, "client.id")->value), len - 18);
}

/* ---- errors in the file ---- */

static void test_config_load_line_without_equals_names_file_and_line(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "# first\nbatch.max_events 5000\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 2, "expected 'key = value', got 'batch.max_events 5000'");

    assert_int_equal(load_text(fx, "[kafka]\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "expected 'key = value', got '[kafka]'");

    assert_int_equal(load_text(fx, "= 5\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "expected 'key = value', got '= 5'");

    assert_int_equal(load_text(fx, "batch max = 5\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "expected 'key = value', got 'batch max = 5'");
}

static void test_config_load_bad_line_does_not_echo_a_secret(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "kafka.sasl.password: hunter2\n", &path), RS_ECONFIG);
    assert_msg_has(&fx->err, ":1: expected 'key = value', got 'kafka.sasl.password...'");
    assert_msg_lacks(&fx->err, "hunter2");
}

static void test_config_load_unknown_key_suggests_the_closest(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "sla.speed_to_lead.hgih = 5m\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "unknown key 'sla.speed_to_lead.hgih'; did you mean 'sla.speed_to_lead.high'?");

    assert_int_equal(load_text(fx, "Topic.Alerts = a\n", &path), RS_ECONFIG);
    assert_msg_has(&fx->err, "did you mean 'topic.alerts'?");

    assert_int_equal(load_text(fx, "completely.different = 1\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "unknown key 'completely.different'");
}

static void test_config_load_unknown_key_suggests_the_kafka_prefix(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "bootstrap.servers = 127.0.0.1:9092\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "unknown key 'bootstrap.servers'; did you mean 'kafka.bootstrap.servers'?");

    assert_int_equal(load_text(fx, "kafak.group.id = revstream\n", &path), RS_ECONFIG);
    assert_msg_has(&fx->err, "did you mean 'kafka.group.id'?");
}

static void test_config_load_bad_integer_names_key_and_range(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "\n\nbatch.max_events = lots\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 3,
                  "key 'batch.max_events': expected an integer from 1 to 1000000, got 'lots'");
    assert_int_equal(fx->cfg.batch_max_events, 5000);
}

static void test_config_load_integer_with_trailing_comment_explains_why(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "batch.max_events = 5000 # per batch\n", &path), RS_ECONFIG);
    assert_msg_has(&fx->err, ":1: key 'batch.max_events': expected an integer");
    assert_msg_has(&fx->err, "'#' starts a comment only at the start of a line");
}

static void test_config_set_rejects_every_malformed_integer(void **state)
{
    static const char *const bad[] = {
        "-5",
        "+5",
        " 5",
        "5 ",
        "0x10",
        "1e3",
        "5000.0",
        "0",
        "1000001",
        "99999999999999999999999",
        "18446744073709551617",
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rs_config_set(&fx->cfg, "batch.max_events", bad[i], "t", &fx->err),
                         RS_ECONFIG);
        assert_msg_has(&fx->err, "t: key 'batch.max_events': expected an integer");
        assert_int_equal(fx->cfg.batch_max_events, 5000);
    }
    assert_int_equal(rs_config_set(&fx->cfg, "batch.max_events", "000042", "t", &fx->err), 0);
    assert_int_equal(fx->cfg.batch_max_events, 42);
}

static void test_config_set_enforces_each_range(void **state)
{
    static const struct {
        const char *key;
        const char *value;
        int rc;
    } cases[] = {
        { "sla.warning_pct", "0", RS_ECONFIG },
        { "sla.warning_pct", "1", 0 },
        { "sla.warning_pct", "99", 0 },
        { "sla.warning_pct", "100", RS_ECONFIG },
        { "sla.escalate_pct", "100", RS_ECONFIG },
        { "sla.escalate_pct", "101", 0 },
        { "state.map_size_mb", "0", RS_ECONFIG },
        { "state.map_size_mb", "1", 0 },
        { "state.map_size_mb", "1048576", 0 },
        { "state.map_size_mb", "1048577", RS_ECONFIG },
        { "batch.max_events", "1000000", 0 },
        { "event.max_bytes", "63", RS_ECONFIG },
        { "event.max_bytes", "1073741824", 0 },
        { "event.max_bytes", "1073741825", RS_ECONFIG },
        { "sla.speed_to_lead.high", "0ms", RS_ECONFIG },
        { "sla.speed_to_lead.high", "1ms", 0 },
        { "sla.speed_to_lead.low", "365d", 0 },
        { "dedup.window", "366d", RS_ECONFIG },
        { "dedup.window", "-1d", RS_ECONFIG },
        { "dedup.window", "7", RS_ECONFIG },
        { "dedup.window", "365d", 0 },
        { "dedup.window", "0s", 0 },
        { "time.max_out_of_orderness", "0s", 0 },
        { "time.max_out_of_orderness", "8d", RS_ECONFIG },
        { "time.tick", "0ms", RS_ECONFIG },
        { "batch.max_time", "2m", RS_ECONFIG },
        { "state.sync_interval", "2h", RS_ECONFIG },
        { "log.level", "warn", 0 },
        { "log.level", "verbose", RS_ECONFIG },
        { "topic.events", "my topic", RS_ECONFIG },
        { "topic.events", "a/b", RS_ECONFIG },
        { "topic.events", "..", RS_ECONFIG },
        { "topic.events", "crm_events-v2.x", 0 },
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = rs_config_set(&fx->cfg, cases[i].key, cases[i].value, "t", &fx->err);

        if (rc != cases[i].rc) {
            fail_msg("%s = %s: got %d (%s), want %d", cases[i].key, cases[i].value, rc,
                     rc != 0 ? fx->err.msg : "", cases[i].rc);
        }
    }
    assert_int_equal(fx->cfg.warning_pct, 99);
    assert_int_equal(fx->cfg.escalate_pct, 101);
    assert_int_equal(fx->cfg.log_level, RS_LOG_LEVEL_WARN);
    assert_int_equal(fx->cfg.dedup_window_ms, 0); /* the last accepted value: off */
}

static void test_config_load_bad_duration_names_key(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "sla.speed_to_lead.high = soon\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'sla.speed_to_lead.high': expected a duration such as 5m, got 'soon'");
}

static void test_config_load_duration_without_unit_is_an_error(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "time.tick = 100\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'time.tick': expected a duration with a unit (ms, s, m, h, d) such as 5m, "
                  "got '100'");
}

static void test_config_load_duration_out_of_range_names_the_range(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "sla.speed_to_lead.low = 400d\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'sla.speed_to_lead.low': expected a duration from 1ms to 365d, got '400d'");
}

static void test_config_load_empty_value_is_an_error(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "topic.alerts =\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "key 'topic.alerts': empty value");

    assert_int_equal(load_text(fx, "topic.alerts = \"\"\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "key 'topic.alerts': empty value");

    assert_int_equal(load_text(fx, "kafka.sasl.password =   \n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "key 'kafka.sasl.password': empty value");
}

static void test_config_load_unclosed_quote_is_an_error(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "state.dir = \"/srv/rs\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "key 'state.dir': value has no closing '\"'");

    assert_int_equal(load_text(fx, "state.dir = \"\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1, "key 'state.dir': value has no closing '\"'");
}

static void test_config_load_duplicate_key_is_rejected(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx,
                               "batch.max_events = 100\n"
                               "topic.events = a\n"
                               "batch.max_events = 200\n",
                               &path),
                     RS_ECONFIG);
    assert_msg_at(&fx->err, path, 3,
                  "key 'batch.max_events': already set on line 1 (only kafka.* and per-stage keys "
                  "may repeat)");
}

static void test_config_load_same_topic_twice_names_both_keys(void **state)
{
    struct fixture *fx = *state;
    char want[RS_ERR_MSG_MAX];
    const char *path;

    assert_int_equal(load_text(fx, "topic.alerts = revops.events\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'topic.alerts': topic 'revops.events' is already used by key "
                  "'topic.events' (default); topic.events, topic.alerts, topic.dlq and "
                  "topic.metrics must differ");

    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "topic.events = crm\ntopic.dlq = crm\n", &path), RS_ECONFIG);
    (void)snprintf(want, sizeof(want),
                   "%s:2: key 'topic.dlq': topic 'crm' is already used by key 'topic.events' "
                   "(%s:1); topic.events, topic.alerts, topic.dlq and topic.metrics must differ",
                   path, path);
    assert_string_equal(fx->err.msg, want);
}

static void test_config_load_funnel_keys(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_true(fx->cfg.sla_enabled[2] && fx->cfg.sla_enabled[7]);
    assert_int_equal(fx->cfg.mql_acceptance_ms, 9 * 3600 * 1000);
    assert_int_equal(fx->cfg.funnel_window_ms[3], INT64_C(180) * 86400 * 1000);
    assert_int_equal(load_text(fx,
                               "sla.handoff.enabled = false\n"
                               "sla.stalled_opportunity.stage.negotiation = 14d\n"
                               "sla.stalled_opportunity.stage.proposal = 7d\n"
                               "sla.stalled_opportunity.stage.negotiation = 10d\n"
                               "http.bind = 0.0.0.0:0\n"
                               "metrics.onboarding_start = opportunity_won\n"
                               "time.zone = Europe/Paris\n",
                               &path),
                     0);
    assert_false(fx->cfg.sla_enabled[4]);
    assert_int_equal(fx->cfg.n_stage_thresholds, 2);
    assert_string_equal(fx->cfg.stage_names[0], "negotiation");
    assert_int_equal(fx->cfg.stage_ms[0], INT64_C(10) * 86400 * 1000); /* the later line wins */
    assert_string_equal(fx->cfg.stage_names[1], "proposal");
    assert_string_equal(fx->cfg.onboarding_start, "opportunity_won");
}

static void test_config_load_dedup_window_from_file_env_and_print(void **state)
{
    struct fixture *fx = *state;
    const char *path = write_file(fx, "dedup.window = 36h\n");
    char *const *env = make_env(fx, (const char *const[]){ "REVSTREAM_DEDUP_WINDOW=0s", NULL });
    char *text;

    assert_int_equal(rs_config_load(&fx->cfg, path, NULL, &fx->err), 0);
    assert_int_equal(fx->cfg.dedup_window_ms, INT64_C(36) * 3600 * 1000);
    text = print_to_string(&fx->cfg);
    assert_non_null(strstr(text, "\ndedup.window = 36h\n"));
    free(text);

    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(rs_config_load(&fx->cfg, path, env, &fx->err), 0);
    assert_int_equal(fx->cfg.dedup_window_ms, 0);
    assert_string_equal(rs_config_origin(&fx->cfg, "dedup.window"), "env REVSTREAM_DEDUP_WINDOW");

    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "dedup.window = 400d\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'dedup.window': expected a duration from 0ms to 365d, got '400d'");
}

static void test_config_load_bad_funnel_values_name_the_key(void **state)
{
    struct fixture *fx = *state;
    const char *path;

    assert_int_equal(load_text(fx, "sla.handoff.enabled = yes\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'sla.handoff.enabled': expected true or false, got 'yes'");
    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "sla.stalled_opportunity.stage.proposal = soon\n", &path),
                     RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'sla.stalled_opportunity.stage.proposal': expected a duration from 1ms to "
                  "365d such as 14d, got 'soon'");
    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "http.bind = 9464\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'http.bind': expected HOST:PORT such as 127.0.0.1:9464, or off, got "
                  "'9464'");
    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "metrics.onboarding_start = signup\n", &path), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 1,
                  "key 'metrics.onboarding_start': expected one of handoff_completed, "
                  "opportunity_won, got 'signup'");
    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "time.zone = Mars/Olympus_Mons\n", &path), RS_ECONFIG);
    assert_non_null(strstr(fx->err.msg, "time.zone"));
    assert_non_null(strstr(fx->err.msg, "Mars/Olympus_Mons"));
    rs_config_release(&fx->cfg);
    rs_config_init(&fx->cfg);
    assert_int_equal(load_text(fx, "calendar.hours = mon-fri 9 to 5\n", &path), RS_ECONFIG);
    assert_non_null(strstr(fx->err.msg, "calendar.hours"));
}

static void test_config_load_missing_file_returns_enoent(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_CAP];
    char want[RS_ERR_MSG_MAX];

    (void)snprintf(path, sizeof(path), "%s/missing.conf", fx->dir);
    assert_int_equal(rs_config_load(&fx->cfg, path, NULL, &fx->err), -ENOENT);
    assert_int_equal(fx->err.code, -ENOENT);
    (void)snprintf(want, sizeof(want), "cannot read config '%s': No such file or directory", path);
    assert_string_equal(fx->err.msg, want);
}

static void test_config_load_directory_returns_eisdir(void **state)
{
    struct fixture *fx = *state;

    (void)snprintf(fx->subdir, sizeof(fx->subdir), "%s/conf.d", fx->dir);
    assert_int_equal(mkdir(fx->subdir, 0700), 0);
    assert_int_equal(rs_config_load(&fx->cfg, fx->subdir, NULL, &fx->err), -EISDIR);
    assert_msg_has(&fx->err, "cannot read config '");
    assert_msg_has(&fx->err, "conf.d': Is a directory");
}

static void test_config_load_rejects_a_nul_byte(void **state)
{
    struct fixture *fx = *state;
    static const char text[] = "topic.events = a\nstate.dir = x\0y\n";
    const char *path = write_file_n(fx, text, sizeof(text) - 1);

    assert_int_equal(rs_config_load(&fx->cfg, path, NULL, &fx->err), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 2, "NUL byte in line (not a text file?)");
    assert_string_equal(fx->cfg.state_dir, "./revstream-state");
}

static void test_config_load_rejects_a_line_over_64_kib(void **state)
{
    struct fixture *fx = *state;
    size_t len = 65537;
    char *text = malloc(len + 20);
    const char *path;

    assert_non_null(text);
    memcpy(text, "# one\n", 6);
    memcpy(text + 6, "kafka.client.id = ", 18);
    memset(text + 24, 'x', len - 18);
    text[6 + len] = '\n';
    path = write_file_n(fx, text, 6 + len + 1);
    free(text);
    assert_int_equal(rs_config_load(&fx->cfg, path, NULL, &fx->err), RS_ECONFIG);
    assert_msg_at(&fx->err, path, 2, "line longer than 65536 bytes");
    assert_int_equal(fx->cfg.kafka_count, 0);
}

/* ---- kafka.* ---- */

static void test_config_load_kafka_keys_pass_through_by_role(void **state)
{
    struct fixture *fx = *state;
    const struct rs_config *cfg = &fx->cfg;
    char origin[PATH_CAP + 8];
    const char *path;

    assert_int_equal(load_text(fx,
                               "kafka.consumer.fetch.max.bytes = 52428800\n"
                               "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                               "kafka.producer.linger.ms = 5\n"
                               "kafka.acks = all\n"
                               "kafka.group.id = revstream\n",
                               &path),
                     0);
    assert_int_equal(cfg->kafka_count, 5);
    /* kafka.X entries first, each group in file order. */
    assert_string_equal(cfg->kafka[0].name, "bootstrap.servers");
    assert_string_equal(cfg->kafka[0].value, "127.0.0.1:9092");
    assert_int_equal(cfg->kafka[0].role, RS_KAFKA_BOTH);
    assert_string_equal(cfg->kafka[1].name, "acks");
    assert_string_equal(cfg->kafka[2].name, "group.id");
    assert_string_equal(cfg->kafka[3].name, "fetch.max.bytes");
    assert_string_equal(cfg->kafka[3].value, "52428800");
    assert_int_equal(cfg->kafka[3].role, RS_KAFKA_CONSUMER);
    assert_string_equal(cfg->kafka[4].name, "linger.ms");
    assert_int_equal(cfg->kafka[4].role, RS_KAFKA_PRODUCER);
    (void)snprintf(origin, sizeof(origin), "%s:2", path);
    assert_string_equal(cfg->kafka[0].origin, origin);
    (void)snprintf(origin, sizeof(origin), "%s:1", path);
    assert_string_equal(rs_config_origin(cfg, "kafka.consumer.fetch.max.bytes"), origin);
    assert_null(rs_config_origin(cfg, "kafka.fetch.max.bytes"));
}

static void test_config_load_kafka_key_repeated_replaces_the_earlier(void **state)
{
    struct fixture *fx = *state;
    const struct rs_kafka_prop *prop;
    char origin[PATH_CAP + 8];
    const char *path;

    assert_int_equal(load_text(fx,
                               "kafka.linger.ms = 5\n"
                               "kafka.producer.linger.ms = 1\n"
                               "kafka.linger.ms = 10\n",
                               &path),
                     0);
    assert_int_equal(fx->cfg.kafka_count, 2);
    prop = kafka_prop(&fx->cfg, RS_KAFKA_BOTH, "linger.ms");
    assert_string_equal(prop->value, "10");
    (void)snprintf(origin, sizeof(origin), "%s:3", path);
    assert_string_equal(prop->origin, origin);
    assert_string_equal(kafka_prop(&fx->cfg, RS_KAFKA_PRODUCER, "linger.ms")->value, "1");
}

static void test_config_load_kafka_key_without_property_name_is_an_error(void **state)
{
    static const char *const lines[] = {
        "kafka. = x\n",
        "kafka.consumer = x\n",
        "kafka.producer. = x\n",
    };
    static const char *const keys[] = { "kafka.", "kafka.consumer", "kafka.producer." };
    struct fixture *fx = *state;
    char want[128];
    const char *path;

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        assert_int_equal(load_text(fx, lines[i], &path), RS_ECONFIG);
        (void)snprintf(want, sizeof(want), "key '%s': no librdkafka property name after it",
                       keys[i]);
        assert_msg_at(&fx->err, path, 1, want);
    }
    assert_int_equal(fx->cfg.kafka_count, 0);
}

/* ---- environment ---- */

static void test_config_env_overrides_a_key_from_the_file(void **state)
{
    struct fixture *fx = *state;
    const char *path = write_file(fx, "batch.max_events = 10\nstate.dir = /from/file\n");
    char *const *env =
        make_env(fx, (const char *const[]){ "PATH=/usr/bin", "REVSTREAM_BATCH_MAX_EVENTS=20",
                                            "REVSTREAM_SLA_SPEED_TO_LEAD_HIGH=2m", NULL });

    assert_int_equal(rs_config_load(&fx->cfg, path, env, &fx->err), 0);
    assert_int_equal(fx->cfg.batch_max_events, 20);
    assert_string_equal(rs_config_origin(&fx->cfg, "batch.max_events"),
                        "env REVSTREAM_BATCH_MAX_EVENTS");
    assert_int_equal(fx->cfg.lead_threshold_ms[RS_TIER_HIGH], 2 * 60 * 1000);
    assert_string_equal(fx->cfg.state_dir, "/from/file");
}

static void test_config_env_bad_value_names_the_variable(void **state)
{
    struct fixture *fx = *state;
    char *const *env =
        make_env(fx, (const char *const[]){ "REVSTREAM_BATCH_MAX_EVENTS=lots", NULL });

    assert_int_equal(rs_config_load(&fx->cfg, NULL, env, &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg, "env REVSTREAM_BATCH_MAX_EVENTS: key 'batch.max_events': "
                                     "expected an integer from 1 to 1000000, got 'lots'");
}

static void test_config_env_overrides_a_kafka_key(void **state)
{
    struct fixture *fx = *state;
    const char *path = write_file(fx, "kafka.sasl.password = from-file\n");
    char *const *env = make_env(
        fx, (const char *const[]){ "REVSTREAM_KAFKA_SASL_PASSWORD=s3cret=with=equals",
                                   "REVSTREAM_KAFKA_CONSUMER_FETCH_MAX_BYTES=1048576", NULL });
    const struct rs_kafka_prop *prop;

    assert_int_equal(rs_config_load(&fx->cfg, path, env, &fx->err), 0);
    assert_int_equal(fx->cfg.kafka_count, 2);
    prop = kafka_prop(&fx->cfg, RS_KAFKA_BOTH, "sasl.password");
    assert_non_null(prop);
    assert_string_equal(prop->value, "s3cret=with=equals");
    assert_string_equal(prop->origin, "env REVSTREAM_KAFKA_SASL_PASSWORD");
    prop = kafka_prop(&fx->cfg, RS_KAFKA_CONSUMER, "fetch.max.bytes");
    assert_non_null(prop);
    assert_string_equal(prop->value, "1048576");
    assert_string_equal(prop->origin, "env REVSTREAM_KAFKA_CONSUMER_FETCH_MAX_BYTES");
}

static void test_config_env_unknown_variable_is_an_error(void **state)
{
    struct fixture *fx = *state;
    char *const *env = make_env(fx, (const char *const[]){ "REVSTREAM_BATCH_MAX_EVENT=5", NULL });

    assert_int_equal(rs_config_load(&fx->cfg, NULL, env, &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg, "env REVSTREAM_BATCH_MAX_EVENT: unknown variable "
                                     "'REVSTREAM_BATCH_MAX_EVENT'; did you mean "
                                     "'REVSTREAM_BATCH_MAX_EVENTS'?");
}

static void test_config_env_empty_value_is_an_error(void **state)
{
    struct fixture *fx = *state;
    char *const *env =
        make_env(fx, (const char *const[]){ "REVSTREAM_KAFKA_SASL_PASSWORD=", NULL });

    assert_int_equal(rs_config_load(&fx->cfg, NULL, env, &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg, "env REVSTREAM_KAFKA_SASL_PASSWORD: key "
                                     "'kafka.sasl.password': empty value");
}

static void test_config_env_reserved_variable_is_ignored(void **state)
{
    struct fixture *fx = *state;
    char *const *env = make_env(fx, (const char *const[]){ "REVSTREAM_CONFIG=/etc/elsewhere.conf",
                                                           "REVSTREAM_LOG_LEVEL=debug", NULL });

    assert_int_equal(rs_config_load(&fx->cfg, NULL, env, &fx->err), 0);
    assert_null(fx->cfg.path);
    assert_int_equal(fx->cfg.log_level, RS_LOG_LEVEL_DEBUG);
    assert_int_equal(fx->cfg.kafka_count, 0);
}

/* ---- set, validate, print, durations ---- */

static void test_config_set_failure_keeps_the_previous_value(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(rs_config_set(&fx->cfg, "state.dir", "/a", "--set", &fx->err), 0);
    assert_int_equal(rs_config_set(&fx->cfg, "state.dir", "", "later", &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg, "later: key 'state.dir': empty value");
    assert_string_equal(fx->cfg.state_dir, "/a");
    assert_string_equal(rs_config_origin(&fx->cfg, "state.dir"), "--set");
    assert_int_equal(rs_config_set(&fx->cfg, "nope", "1", "--set", &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg, "--set: unknown key 'nope'");
    assert_null(rs_config_origin(&fx->cfg, "nope"));
}

static void test_config_set_accepts_its_own_current_value(void **state)
{
    struct fixture *fx = *state;
    const char *origin;

    assert_int_equal(rs_config_set(&fx->cfg, "state.dir", "/a", "--set", &fx->err), 0);
    origin = rs_config_origin(&fx->cfg, "state.dir");
    assert_int_equal(rs_config_set(&fx->cfg, "state.dir", fx->cfg.state_dir, origin, &fx->err), 0);
    assert_string_equal(fx->cfg.state_dir, "/a");
    assert_string_equal(rs_config_origin(&fx->cfg, "state.dir"), "--set");

    assert_int_equal(rs_config_set(&fx->cfg, "kafka.acks", "all", "--set", &fx->err), 0);
    assert_int_equal(rs_config_set(&fx->cfg, "kafka.acks", fx->cfg.kafka[0].value,
                                   fx->cfg.kafka[0].origin, &fx->err),
                     0);
    assert_string_equal(fx->cfg.kafka[0].value, "all");
    assert_string_equal(fx->cfg.kafka[0].origin, "--set");
}

static void test_config_validate_catches_what_set_cannot(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(rs_config_set(&fx->cfg, "topic.dlq", "revops.alerts", "--set", &fx->err), 0);
    assert_int_equal(rs_config_validate(&fx->cfg, &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg,
                        "--set: key 'topic.dlq': topic 'revops.alerts' is already used by key "
                        "'topic.alerts' (default); topic.events, topic.alerts, topic.dlq and "
                        "topic.metrics must differ");

    assert_int_equal(rs_config_set(&fx->cfg, "topic.dlq", "revops.dlq", "--set", &fx->err), 0);
    fx->cfg.warning_pct = 0; /* a field written directly, bypassing rs_config_set() */
    assert_int_equal(rs_config_validate(&fx->cfg, &fx->err), RS_ECONFIG);
    assert_string_equal(fx->err.msg, "default: key 'sla.warning_pct': expected an integer from 1 "
                                     "to 99, got '0'");
}

static void test_config_print_masks_secrets(void **state)
{
    static const char *const secrets[][2] = {
        { "kafka.sasl.password", "hunter2" },
        { "kafka.ssl.key.password", "keypass1" },
        { "kafka.producer.ssl.key.pem", "BEGINPRIVATEKEY" },
        { "kafka.sasl.oauthbearer.config", "principal=me" },
        { "kafka.sasl.oauthbearer.client.secret", "clientsecret9" },
    };
    struct fixture *fx = *state;
    char *text;

    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        assert_int_equal(rs_config_set(&fx->cfg, secrets[i][0], secrets[i][1], "t", &fx->err), 0);
    }
    assert_int_equal(
        rs_config_set(&fx->cfg, "kafka.bootstrap.servers", "127.0.0.1:9092", "t", &fx->err), 0);
    text = print_to_string(&fx->cfg);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        char line[128];

        if (strstr(text, secrets[i][1]) != NULL) {
            fail_msg("printed config shows the secret of %s:\n%s", secrets[i][0], text);
        }
        (void)snprintf(line, sizeof(line), "%s = ***\n", secrets[i][0]);
        assert_non_null(strstr(text, line));
    }
    assert_non_null(strstr(text, "kafka.bootstrap.servers = 127.0.0.1:9092\n"));
    assert_non_null(strstr(text, "batch.max_events = 5000\n"));
    assert_non_null(strstr(text, "sla.speed_to_lead.high = 5m\n"));
    assert_non_null(strstr(text, "log.level = info\n"));
    assert_ptr_equal(strstr(text, "log.level = "), text); /* documented order: log.level first */
    free(text);
}

static void test_config_print_output_loads_back_the_same(void **state)
{
    struct fixture *fx = *state;
    struct rs_config again;
    const char *path;
    char *first;
    char *second;

    assert_int_equal(load_text(fx,
                               "state.dir = \" spaced \"\n"
                               "kafka.client.id = \"\"quoted\"\n"
                               "kafka.consumer.group.id = revstream\n"
                               "sla.speed_to_lead.mql = 90s\n"
                               "time.tick = 1500ms\n",
                               &path),
                     0);
    first = print_to_string(&fx->cfg);
    path = write_file(fx, first);
    rs_config_init(&again);
    assert_int_equal(rs_config_load(&again, path, NULL, &fx->err), 0);
    second = print_to_string(&again);
    assert_string_equal(first, second);
    assert_string_equal(again.state_dir, " spaced ");
    assert_string_equal(kafka_prop(&again, RS_KAFKA_BOTH, "client.id")->value, "\"quoted");
    assert_int_equal(again.lead_threshold_ms[RS_TIER_MQL], 90000);
    rs_config_release(&again);
    free(first);
    free(second);
}

static void test_config_parse_duration_accepts_each_unit(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        { "0ms", 0 },
        { "250ms", 250 },
        { "5s", 5000 },
        { "5m", 300000 },
        { "2h", 7200000 },
        { "1d", 86400000 },
        { "007s", 7000 },
        { "106751991167d", INT64_C(106751991167) * 86400000 },
        { "9223372036854775807ms", INT64_MAX },
    };
    int64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = -1;
        assert_int_equal(rs_config_parse_duration(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
}

static void test_config_parse_duration_rejects_the_rest(void **state)
{
    static const char *const bad[] = {
        "",
        "5",
        "m",
        "5 m",
        " 5m",
        "-5m",
        "+5m",
        "5min",
        "1.5h",
        "5M",
        "5ms ",
        "5mss",
        "5sm",
        "106751991168d",
        "9223372036854775808ms",
        "99999999999999999999999s",
    };
    int64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 42;
        if (rs_config_parse_duration(bad[i], &ms) != RS_ECONFIG) {
            fail_msg("'%s' parsed as %lld ms", bad[i], (long long)ms);
        }
        assert_int_equal(ms, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_config_init_sets_documented_defaults),
        T(test_config_load_full_file_sets_every_key),
        T(test_config_load_skips_comments_and_blank_lines_and_strips_quotes),
        T(test_config_load_empty_file_keeps_defaults),
        T(test_config_load_accepts_a_line_of_exactly_64_kib),
        T(test_config_load_line_without_equals_names_file_and_line),
        T(test_config_load_bad_line_does_not_echo_a_secret),
        T(test_config_load_unknown_key_suggests_the_closest),
        T(test_config_load_unknown_key_suggests_the_kafka_prefix),
        T(test_config_load_bad_integer_names_key_and_range),
        T(test_config_load_integer_with_trailing_comment_explains_why),
        T(test_config_set_rejects_every_malformed_integer),
        T(test_config_set_enforces_each_range),
        T(test_config_load_bad_duration_names_key),
        T(test_config_load_duration_without_unit_is_an_error),
        T(test_config_load_duration_out_of_range_names_the_range),
        T(test_config_load_empty_value_is_an_error),
        T(test_config_load_unclosed_quote_is_an_error),
        T(test_config_load_duplicate_key_is_rejected),
        T(test_config_load_same_topic_twice_names_both_keys),
        T(test_config_load_funnel_keys),
        T(test_config_load_dedup_window_from_file_env_and_print),
        T(test_config_load_bad_funnel_values_name_the_key),
        T(test_config_load_missing_file_returns_enoent),
        T(test_config_load_directory_returns_eisdir),
        T(test_config_load_rejects_a_nul_byte),
        T(test_config_load_rejects_a_line_over_64_kib),
        T(test_config_load_kafka_keys_pass_through_by_role),
        T(test_config_load_kafka_key_repeated_replaces_the_earlier),
        T(test_config_load_kafka_key_without_property_name_is_an_error),
        T(test_config_env_overrides_a_key_from_the_file),
        T(test_config_env_bad_value_names_the_variable),
        T(test_config_env_overrides_a_kafka_key),
        T(test_config_env_unknown_variable_is_an_error),
        T(test_config_env_empty_value_is_an_error),
        T(test_config_env_reserved_variable_is_ignored),
        T(test_config_set_failure_keeps_the_previous_value),
        T(test_config_set_accepts_its_own_current_value),
        T(test_config_validate_catches_what_set_cannot),
        T(test_config_print_masks_secrets),
        T(test_config_print_output_loads_back_the_same),
        T(test_config_parse_duration_accepts_each_unit),
        T(test_config_parse_duration_rejects_the_rest),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
