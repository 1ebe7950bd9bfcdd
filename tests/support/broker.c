#define _GNU_SOURCE /* usleep-free nanosleep is POSIX; this is for environ */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "test support: %s: %s\n", what, detail);
    abort();
}

const char *rs_tb_brokers(void)
{
    const char *b = getenv("RS_TEST_BROKERS");

    return b != NULL && *b != '\0' ? b : NULL;
}

char *rs_tb_unique(const char *prefix)
{
    static unsigned counter;
    char *name = malloc(128);

    (void)snprintf(name, 128, "%s-%d-%u-%lld", prefix, (int)getpid(), ++counter,
                   (long long)(rs_tb_now_ms() % 1000000));
    return name;
}

static rd_kafka_conf_t *base_conf(const char *brokers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        die("bootstrap.servers", errstr);
    }
    return conf;
}

void rs_tb_create_topic(const char *brokers, const char *topic, int partitions)
{
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(brokers), errstr, sizeof(errstr));
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n;

    if (rk == NULL) {
        die("admin client", errstr);
    }
    nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL) {
        die("create topic", "timed out");
    }
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n != 1 || (rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
                   rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)) {
        die("create topic", n == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no result");
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

rd_kafka_t *rs_tb_producer_new(const char *brokers)
{
    char errstr[256];
    rd_kafka_conf_t *conf = base_conf(brokers);
    rd_kafka_t *rk;

    (void)rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    (void)rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        die("producer", errstr);
    }
    return rk;
}

/*
 * Produce with the key's partitioner (partition RD_KAFKA_PARTITION_UA) or to `partition`,
 * stamped by librdkafka (timestamp_ms 0) or with `timestamp_ms`.
 */
static void produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key,
                    size_t key_len, const void *payload, size_t len, int64_t timestamp_ms)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        rd_kafka_vu_t vu[6];
        size_t n = 4;
        rd_kafka_error_t *error;

        vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[0].u.cstr = topic;
        vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
        vu[1].u.i32 = partition;
        vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
        vu[2].u.mem.ptr = (void *)(uintptr_t)payload;
        vu[2].u.mem.size = len;
        vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[3].u.i = RD_KAFKA_MSG_F_COPY;
        if (key != NULL) {
            vu[n].vtype = RD_KAFKA_VTYPE_KEY;
            vu[n].u.mem.ptr = (void *)(uintptr_t)key;
            vu[n++].u.mem.size = key_len;
        }
        if (timestamp_ms != 0) {
            vu[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
            vu[n++].u.i64 = timestamp_ms;
        }
        error = rd_kafka_produceva(p, vu, n);
        err = error != NULL ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (error != NULL) {
            rd_kafka_error_destroy(error);
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(p, 50);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        die("produce", rd_kafka_err2str(err));
    }
    rd_kafka_poll(p, 0);
}

void rs_tb_produce(rd_kafka_t *p, const char *topic, const void *key, size_t key_len,
                   const void *payload, size_t len)
{
    produce(p, topic, RD_KAFKA_PARTITION_UA, key, key_len, payload, len, 0);
}

void rs_tb_produce_to(rd_kafka_t *p, const char *topic, int32_t partition, const void *payload,
                      size_t len)
{
    produce(p, topic, partition, NULL, 0, payload, len, 0);
}

void rs_tb_produce_at(rd_kafka_t *p, const char *topic, int32_t partition, const void *payload,
                      size_t len, int64_t timestamp_ms)
{
    produce(p, topic, partition, NULL, 0, payload, len, timestamp_ms);
}

void rs_tb_flush(rd_kafka_t *p)
{
    if (rd_kafka_flush(p, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        die("flush", "messages left after 30 s");
    }
}

rd_kafka_t *rs_tb_reader_new(const char *brokers, const char *topic, int partitions)
{
    char errstr[256];
    rd_kafka_conf_t *conf = base_conf(brokers);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    char *group = rs_tb_unique("reader");
    rd_kafka_t *rk;

    (void)rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    (void)rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    free(group);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        die("reader", errstr);
    }
    for (int i = 0; i < partitions; i++) {
        rd_kafka_topic_partition_list_add(list, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        die("reader", "assign failed");
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rk;
}

size_t rs_tb_read(rd_kafka_t *reader, size_t want, int idle_ms, int timeout_ms,
                  rs_tb_message_cb *cb, void *opaque)
{
    int64_t start = rs_tb_now_ms();
    int64_t last = start;
    size_t n = 0;

    while (rs_tb_now_ms() - start < timeout_ms && (want == 0 || n < want)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 100);

        if (m == NULL) {
            if (rs_tb_now_ms() - last >= idle_ms) {
                break;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            cb(opaque, m);
            n++;
            last = rs_tb_now_ms();
        }
        rd_kafka_message_destroy(m);
    }
    return n;
}

/* In the child: `fd_target` to a new file at `path`; NULL keeps it. */
static void redirect(const char *path, int fd_target)
{
    int fd;

    if (path == NULL) {
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, fd_target) < 0) {
        _exit(127);
    }
    close(fd);
}

pid_t rs_tb_spawn(const char *const *args, const char *out_path)
{
    return rs_tb_spawn_io(args, out_path, NULL);
}

pid_t rs_tb_spawn_io(const char *const *args, const char *out_path, const char *err_path)
{
    pid_t pid = fork();

    if (pid < 0) {
        die("fork", strerror(errno));
    }
    if (pid == 0) {
        redirect(out_path, STDOUT_FILENO);
        redirect(err_path, STDERR_FILENO);
        execve(args[0], (char *const *)(uintptr_t)args, environ);
        _exit(127);
    }
    return pid;
}

int rs_tb_wait(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            die("waitpid", strerror(errno));
        }
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}

int rs_tb_run(const char *const *args, const char *out_path)
{
    return rs_tb_wait(rs_tb_spawn(args, out_path));
}

int rs_tb_run_io(const char *const *args, const char *out_path, const char *err_path)
{
    return rs_tb_wait(rs_tb_spawn_io(args, out_path, err_path));
}

char *rs_tb_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL) {
        return NULL;
    }
    (void)fseek(f, 0, SEEK_END);
    len = ftell(f);
    (void)fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        len = 0;
    }
    buf[len] = '\0';
    (void)fclose(f);
    return buf;
}

int64_t rs_tb_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rs_tb_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
