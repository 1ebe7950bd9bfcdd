#include "inspect.h"

#include "app.h"
#include "finance.h"
#include "query.h"
#include "sla.h"
#include "store.h"

#include <inttypes.h>
#include <string.h>

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char *cli_param(void *opaque, const char *name)
{
    const struct rs_cli *cli = opaque;

    for (int i = 0; i < cli->n_params; i++) {
        if (strcmp(cli->param_names[i], name) == 0) {
            return cli->param_values[i];
        }
    }
    return NULL;
}

struct summary {
    json_t *offsets;
    int64_t min_max_ts;
};

static int add_offset(void *opaque, const char *topic, int32_t partition,
                      const struct rs_store_offset *off)
{
    struct summary *s = opaque;
    json_t *o = json_object();

    json_object_set_new(o, "topic", json_string(topic));
    json_object_set_new(o, "partition", json_integer(partition));
    json_object_set_new(o, "next_offset", json_integer(off->next_offset));
    json_object_set_new(o, "applied", json_integer((json_int_t)off->applied));
    json_object_set_new(o, "max_event_ms",
                        json_integer(off->max_ts_ms == INT64_MIN ? 0 : off->max_ts_ms));
    json_array_append_new(s->offsets, o);
    if (off->max_ts_ms < s->min_max_ts) {
        s->min_max_ts = off->max_ts_ms;
    }
    return 0;
}

/* Duplicates ever dropped: the duplicate_events cells of one grain, every partition. */
static int add_duplicates(void *opaque, const struct rs_agg_key *key,
                          const struct rs_agg_cell *cell)
{
    if (key->grain == RS_GRAIN_QUARTER) {
        *(int64_t *)opaque += cell->n[0];
    }
    return 0;
}

static json_t *count(struct rs_store *st, enum rs_db db)
{
    return json_integer(st != NULL ? (json_int_t)rs_store_count(st, db) : 0);
}

static json_t *summary_json(const char *dir, struct rs_store *st, const struct rs_sla_stats *ls,
                            json_t *offsets)
{
    json_t *o = json_object();
    json_t *leads = json_object();

    json_object_set_new(leads, "created", json_integer((json_int_t)ls->leads));
    json_object_set_new(leads, "pending", json_integer((json_int_t)ls->pending));
    json_object_set_new(leads, "running", json_integer((json_int_t)ls->running));
    json_object_set_new(leads, "breached", json_integer((json_int_t)ls->breached));
    json_object_set_new(leads, "met", json_integer((json_int_t)ls->met));
    json_object_set_new(leads, "breached_then_met",
                        json_integer((json_int_t)ls->breached_then_met));
    json_object_set_new(leads, "cancelled", json_integer((json_int_t)ls->cancelled));
    json_object_set_new(leads, "p50_response_ms", json_real(ls->p50_response_ms));
    json_object_set_new(leads, "p90_response_ms", json_real(ls->p90_response_ms));
    json_object_set_new(o, "state_dir", json_string(dir));
    json_object_set_new(o, "leads", leads);
    json_object_set_new(o, "exists", json_true());
    json_object_set_new(o, "open_timers", count(st, RS_DB_TIMERS));
    json_object_set_new(o, "aggregates", count(st, RS_DB_AGGREGATES));
    json_object_set_new(o, "outbox", count(st, RS_DB_OUTBOX));
    {
        int64_t dups = 0;
        struct rs_err err;

        if (st != NULL && rs_store_read_begin(st, &err) == 0) {
            (void)rs_agg_scan(st, RS_MDQ_DUPLICATES, add_duplicates, &dups, &err);
            rs_store_read_end(st);
        }
        json_object_set_new(o, "duplicates", json_integer(dups));
    }
    json_object_set(o, "offsets", offsets);
    return o;
}

/* ---- tables ---------------------------------------------------------------------- */

static void cell_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        (void)snprintf(buf, size, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        (void)snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        (void)snprintf(buf, size, "%.6g", json_real_value(v));
    } else if (json_is_true(v) || json_is_false(v)) {
        (void)snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_null(v) || v == NULL) {
        (void)snprintf(buf, size, "-");
    } else {
        char *text = json_dumps(v, JSON_COMPACT);

        (void)snprintf(buf, size, "%s", text != NULL ? text : "?");
        free(text);
    }
}

/* Rows of objects: one column per key of the first row, widths fitted. */
static void print_rows(FILE *out, const json_t *rows)
{
    const json_t *first = json_array_get(rows, 0);
    const char *key;
    const json_t *v;
    size_t widths[32] = { 0 };
    size_t ncol = 0, i;
    char buf[256];

    if (first == NULL) {
        fputs("(none)\n", out);
        return;
    }
    json_object_foreach((json_t *)(uintptr_t)first, key, v)
    {
        if (ncol < 32) {
            widths[ncol++] = strlen(key);
        }
    }
    for (i = 0; i < json_array_size(rows); i++) {
        size_t c = 0;

        json_object_foreach(json_array_get(rows, i), key, v)
        {
            if (c < ncol) {
                cell_text(v, buf, sizeof(buf));
                widths[c] = strlen(buf) > widths[c] ? strlen(buf) : widths[c];
            }
            c++;
        }
    }
    {
        size_t c = 0;

        json_object_foreach((json_t *)(uintptr_t)first, key, v)
        {
            if (c < ncol) {
                fprintf(out, "%-*s%s", (int)widths[c], key, c + 1 < ncol ? "  " : "\n");
            }
            c++;
        }
    }
    for (i = 0; i < json_array_size(rows); i++) {
        size_t c = 0;

        json_object_foreach(json_array_get(rows, i), key, v)
        {
            if (c < ncol) {
                cell_text(v, buf, sizeof(buf));
                fprintf(out, "%-*s%s", (int)widths[c], buf, c + 1 < ncol ? "  " : "\n");
            }
            c++;
        }
    }
}

static void print_table(FILE *out, const json_t *v)
{
    const char *key;
    const json_t *item;
    char buf[256];

    if (json_is_array(v)) {
        print_rows(out, v);
        return;
    }
    json_object_foreach((json_t *)(uintptr_t)v, key, item)
    {
        if (json_is_array(item) && json_array_size(item) > 0 &&
            json_is_object(json_array_get(item, 0))) {
            fprintf(out, "%s:\n", key);
            print_rows(out, item);
        } else {
            cell_text(item, buf, sizeof(buf));
            fprintf(out, "%-20s %s\n", key, buf);
        }
    }
}

/* ---- the command ----------------------------------------------------------------- */

int rs_inspect_run(const struct rs_config *cfg, const struct rs_cli *cli, FILE *out)
{
    struct rs_store *st = NULL;
    struct rs_zone *zone = NULL;
    struct rs_calendar *cal = NULL;
    struct rs_metrics_config mc;
    struct rs_finance_config fc;
    struct summary sum = { json_array(), INT64_MAX };
    struct rs_query_params params = { cli_param, (void *)(uintptr_t)cli };
    struct rs_query_ctx ctx;
    struct rs_err err;
    json_t *result = NULL;
    const char *dir = cli->state_dir != NULL ? cli->state_dir : cfg->state_dir;
    int rc;

    rs_err_clear(&err);
    rc = rs_app_clocks_open(cfg, &zone, &cal, &err);
    if (rc == 0) {
        rc = rs_store_open_readonly(&st, dir, &err);
        if (rc == 0 && cli->dump) {
            rc = rs_store_dump(st, out, &err);
            if (rc != 0) {
                fprintf(stderr, "revstream: %s\n", err.msg);
            }
            goto out;
        }
        if (rc == RS_ENOTFOUND && strcmp(cli->what, "summary") == 0) {
            /* Nothing consumed yet: an empty summary, and the directory stays untouched. */
            struct rs_sla_stats none;

            memset(&none, 0, sizeof(none));
            result = summary_json(dir, NULL, &none, sum.offsets);
            json_object_set_new(result, "exists", json_false());
            rc = 0;
            goto print;
        }
    }
    if (rc == 0) {
        rc = rs_store_offset_each(st, add_offset, &sum, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "revstream: %s\n", err.msg);
        goto out;
    }
    rs_app_metrics_config(cfg, zone, cal, &fc, &mc);
    ctx = (struct rs_query_ctx){ st, &mc, NULL, 0, INT64_MIN };
    if (sum.min_max_ts != INT64_MAX && sum.min_max_ts != INT64_MIN) {
        ctx.watermark_ms = sum.min_max_ts - cfg->max_out_of_orderness_ms;
    }
    if (strcmp(cli->what, "summary") == 0) {
        struct rs_sla_stats ls;

        /* rs_sla_stats opens its own snapshot. */
        rc = rs_sla_stats(st, &ls, &err);
        if (rc == 0) {
            result = summary_json(dir, st, &ls, sum.offsets);
        }
    } else if (strcmp(cli->what, "metrics") == 0) {
        result = rs_query_list();
    } else {
        rc = rs_store_read_begin(st, &err);
        if (rc == 0) {
            if (strcmp(cli->what, "metric") == 0) {
                rc = rs_query_metric(&ctx, &params, &result, &err);
            } else if (strcmp(cli->what, "series") == 0) {
                rc = rs_query_series(&ctx, &params, &result, &err);
            } else {
                rc = rs_query_open(&ctx, &params, &result, &err);
            }
            rs_store_read_end(st);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "revstream: %s\n", err.msg);
        goto out;
    }
print:
    if (cli->table) {
        print_table(out, result);
    } else {
        char *text = json_dumps(result, JSON_COMPACT);

        fprintf(out, "%s\n", text != NULL ? text : "null");
        free(text);
    }

out:
    json_decref(result);
    json_decref(sum.offsets);
    rs_store_close(st);
    rs_calendar_free(cal);
    rs_zone_free(zone);
    return rc == 0 ? 0 : rc == RS_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
}
