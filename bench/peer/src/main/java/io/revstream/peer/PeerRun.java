package io.revstream.peer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.AutoOffsetReset;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * One benchmark run: SLA-01 over INPUT_TOPIC from the earliest offset until EXPECTED_RECORDS
 * records were processed and every task fired what its final stream time makes due; then a
 * clean close and one result line on stdout.
 */
final class PeerRun {
    static final class Options {
        String brokers, input, alerts;
        Path stateDir;
        long expected;
        long highMs = 5 * 60_000L, mqlMs = 60 * 60_000L, lowMs = 24 * 3_600_000L;
        long latenessMs = 10 * 60_000L; // revstream's time.max_out_of_orderness default
        long punctuateMs = 1000;
        int threads; // 0: input partitions, capped by the processors
        boolean changelog = true;
        boolean keep; // keep the local state and the internal topics after the run
        long idleTimeoutS = 120;
    }

    private PeerRun() {}

    static int run(Options o) throws Exception {
        int partitions;
        String appId = "revstream-peer-" + System.currentTimeMillis() + "-" + ProcessHandle.current().pid();
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, o.brokers);
        try (Admin admin = Admin.create(ap)) {
            TopicDescription d = admin.describeTopics(List.of(o.input)).allTopicNames().get(60, TimeUnit.SECONDS)
                    .get(o.input);
            partitions = d.partitions().size();
            ensureTopic(admin, o.alerts, partitions, Map.of());
        }
        int cpus = Runtime.getRuntime().availableProcessors();
        int threads = o.threads > 0 ? o.threads : Math.max(1, Math.min(partitions, cpus));
        System.err.printf("peer: java %s (%s), kafka-streams %s, application.id %s, %d partitions, %d stream threads,"
                + " max heap %d MiB%n", System.getProperty("java.version"), System.getProperty("java.vm.name"),
                AppInfoParser.getVersion(), appId, partitions, threads,
                Runtime.getRuntime().maxMemory() >> 20);

        RunState run = new RunState(o.highMs, o.mqlMs, o.lowMs, o.latenessMs, o.punctuateMs);
        Topology topology = topology(o, run);
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.brokers);
        p.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir.toString());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // A changelog record carries the timestamp of the record (or punctuation) being
        // processed, which is event time, and brokers refuse CreateTime timestamps more than
        // message.timestamp.after.max.ms (1 h) ahead: events in the future would stop the
        // application. The broker stamps the changelogs instead.
        p.put(StreamsConfig.topicPrefix(TopicConfig.MESSAGE_TIMESTAMP_TYPE_CONFIG), "LogAppendTime");

        AtomicReference<Throwable> failure = new AtomicReference<>();
        long t0;
        long records;
        double seconds;
        try (KafkaStreams streams = new KafkaStreams(topology, p)) {
            streams.setUncaughtExceptionHandler(e -> {
                failure.compareAndSet(null, e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.setStateListener((now, before) -> {
                if (now == KafkaStreams.State.ERROR) {
                    failure.compareAndSet(null, new IllegalStateException("Kafka Streams is in state ERROR"));
                }
            });
            t0 = System.nanoTime();
            streams.start();
            long last = -1, lastChange = System.nanoTime(), lastReport = System.nanoTime();
            while (true) {
                Thread.sleep(20);
                if (failure.get() != null) {
                    System.err.println("peer: error: " + failure.get());
                    streams.close(Duration.ofSeconds(30));
                    return 1;
                }
                long n = run.records.sum();
                if (System.nanoTime() - lastReport >= TimeUnit.SECONDS.toNanos(10)) {
                    lastReport = System.nanoTime();
                    System.err.printf("peer: progress records=%d of %d alerts=%d%n", n, o.expected, run.alerts.sum());
                }
                if (n != last) {
                    last = n;
                    lastChange = System.nanoTime();
                } else if (System.nanoTime() - lastChange > TimeUnit.SECONDS.toNanos(o.idleTimeoutS)) {
                    System.err.printf("peer: error: no progress for %d s at %d of %d records%n", o.idleTimeoutS, n,
                            o.expected);
                    streams.close(Duration.ofSeconds(30));
                    return 1;
                }
                if (n >= o.expected && !run.draining()) {
                    run.startDrain();
                }
                if (run.draining() && run.drainedCount() >= partitions) {
                    break;
                }
            }
            seconds = (System.nanoTime() - t0) / 1e9;
            records = run.records.sum();
            if (!streams.close(Duration.ofSeconds(60))) {
                System.err.println("peer: error: Kafka Streams did not close within 60 s");
                return 1;
            }
        }
        if (!o.keep) {
            deleteTree(o.stateDir.resolve(appId)); // this run's own directory, closed
        }
        if (!o.keep) {
            deleteInternalTopics(ap, appId);
        }
        System.err.printf("peer: %.0f records/s, %d records skipped as invalid%n", records / seconds, run.invalid.sum());
        System.out.printf("peer: records=%d seconds=%.3f alerts=%d%n", records, seconds, run.alerts.sum());
        return 0;
    }

    static Topology topology(Options o, RunState run) {
        StoreBuilder<KeyValueStore<Bytes, byte[]>> leads =
                Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(SlaProcessor.LEADS), Serdes.Bytes(),
                        Serdes.ByteArray());
        StoreBuilder<KeyValueStore<Bytes, byte[]>> deadlines =
                Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(SlaProcessor.DEADLINES), Serdes.Bytes(),
                        Serdes.ByteArray());
        if (!o.changelog) {
            leads = leads.withLoggingDisabled();
            deadlines = deadlines.withLoggingDisabled();
        }
        Topology t = new Topology();
        // The input is keyed by account (or lead) and a lead's events share a partition, so
        // state keyed by lead id within the task needs no repartition topic.
        t.addSource(AutoOffsetReset.earliest(), "events", new EventTimeExtractor(), new ByteArrayDeserializer(), new ByteArrayDeserializer(),
                o.input);
        t.addProcessor("sla01", () -> new SlaProcessor(run), "events");
        t.addStateStore(leads, "sla01");
        t.addStateStore(deadlines, "sla01");
        t.addSink("alerts", o.alerts, new StringSerializer(), new StringSerializer(), "sla01");
        return t;
    }

    /**
     * Creates the topics that do not exist yet (replication factor: the broker's default) with
     * no time retention: records stamped with event times weeks old would otherwise be deleted
     * by the broker's next retention check (every 5 minutes by default), while being read.
     */
    static void createTopics(String brokers, int partitions, List<String> topics) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (Admin admin = Admin.create(ap)) {
            for (String t : topics) {
                ensureTopic(admin, t, partitions, Map.of(TopicConfig.RETENTION_MS_CONFIG, "-1"));
            }
        }
    }

    /** Deletes the topics that exist among these. */
    static void deleteTopics(String brokers, List<String> topics) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (Admin admin = Admin.create(ap)) {
            Set<String> have = admin.listTopics().names().get(60, TimeUnit.SECONDS);
            List<String> gone = topics.stream().filter(have::contains).collect(Collectors.toList());
            if (!gone.isEmpty()) {
                admin.deleteTopics(gone).all().get(60, TimeUnit.SECONDS);
            }
        }
    }

    private static void ensureTopic(Admin admin, String topic, int partitions, Map<String, String> configs)
            throws Exception {
        try {
            NewTopic t = new NewTopic(topic, Optional.of(partitions), Optional.empty()).configs(configs);
            admin.createTopics(List.of(t)).all().get(60, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }
    }

    private static void deleteTree(Path dir) {
        try (var paths = Files.walk(dir)) {
            for (Path f : paths.sorted(Comparator.reverseOrder()).collect(Collectors.toList())) {
                Files.deleteIfExists(f);
            }
        } catch (IOException e) {
            System.err.println("peer: warning: could not delete " + dir + ": " + e);
        }
    }

    /** The changelog topics of this run's fresh application.id: nothing else will read them. */
    private static void deleteInternalTopics(Properties ap, String appId) {
        try (Admin admin = Admin.create(ap)) {
            Set<String> mine = admin.listTopics().names().get(60, TimeUnit.SECONDS).stream()
                    .filter(n -> n.startsWith(appId + "-")).collect(Collectors.toSet());
            if (!mine.isEmpty()) {
                admin.deleteTopics(mine).all().get(60, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            System.err.println("peer: warning: could not delete the internal topics of " + appId + ": " + e);
        }
    }
}
