package io.revstream.peer;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.value.Value;

/**
 * {@code --dump-alerts BROKERS TOPIC [--with-target]}: every SLA-01 alert on TOPIC, from the first
 * offset to the end offsets when it starts, as {@code lead_id|level} lines (plus
 * {@code |target_ms} with --with-target), in either format:
 *
 * <ul>
 *   <li>revstream's msgpack alert map (schemas/alert.json): {@code entity.id}, {@code level},
 *       {@code target_at}; only {@code sla_type} SLA-01_speed_to_lead; a {@code sla.retracted}
 *       alert ends in {@code |retracted}, so it never reads as the level it takes back;
 *   <li>the peer's text {@code lead_id|L1_breach|target_ms}.
 * </ul>
 */
final class AlertDump {
    private static final String SLA_01 = "SLA-01_speed_to_lead";

    private AlertDump() {}

    static int run(String brokers, String topic, boolean withTarget) throws IOException {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5000");
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
        long bad = 0;
        try (KafkaConsumer<byte[], byte[]> c =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            var infos = c.partitionsFor(topic, Duration.ofSeconds(60));
            if (infos == null || infos.isEmpty()) {
                System.err.println("peer: error: no topic '" + topic + "'");
                return 1;
            }
            List<TopicPartition> parts =
                    infos.stream().map(i -> new TopicPartition(topic, i.partition())).collect(Collectors.toList());
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts, Duration.ofSeconds(60));
            long idleSince = System.nanoTime();
            while (!done(c, end)) {
                var recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    if (System.nanoTime() - idleSince > Duration.ofSeconds(60).toNanos()) {
                        System.err.println("peer: error: no records for 60 s before the end offsets of " + topic);
                        return 1;
                    }
                    continue;
                }
                idleSince = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (end.get(new TopicPartition(r.topic(), r.partition())) <= r.offset()) {
                        continue; // written after the dump started
                    }
                    String line = line(r.value(), withTarget);
                    if (line == null) {
                        bad++;
                    } else if (!line.isEmpty()) {
                        out.write(line);
                        out.write('\n');
                    }
                }
            }
        }
        out.flush();
        if (bad > 0) {
            System.err.println("peer: warning: " + bad + " records of " + topic + " are not alerts");
        }
        return 0;
    }

    private static boolean done(KafkaConsumer<byte[], byte[]> c, Map<TopicPartition, Long> end) {
        for (var e : end.entrySet()) {
            if (c.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }

    /** The line for one alert; "" for another SLA's; null for what is no alert. */
    static String line(byte[] v, boolean withTarget) {
        if (v == null || v.length == 0) {
            return null;
        }
        int b = v[0] & 0xff;
        if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
            return msgpackLine(v, withTarget);
        }
        String[] f = new String(v, StandardCharsets.UTF_8).split("\\|", -1);
        if (f.length != 3) {
            return null;
        }
        return withTarget ? f[0] + "|" + f[1] + "|" + f[2] : f[0] + "|" + f[1];
    }

    private static String msgpackLine(byte[] v, boolean withTarget) {
        try (MessageUnpacker u = MessagePack.newDefaultUnpacker(v)) {
            Map<Value, Value> m = u.unpackValue().asMapValue().map();
            String sla = str(m.get(key("sla_type")));
            if (!SLA_01.equals(sla)) {
                return "";
            }
            Value entity = m.get(key("entity"));
            String id = entity != null && entity.isMapValue() ? str(entity.asMapValue().map().get(key("id"))) : null;
            String level = str(m.get(key("level")));
            Value target = m.get(key("target_at"));
            if (id == null || level == null) {
                return null;
            }
            StringBuilder sb = new StringBuilder(id).append('|').append(level);
            if (withTarget) {
                sb.append('|').append(target != null && target.isIntegerValue() ? target.asIntegerValue().toLong() : -1);
            }
            if ("sla.retracted".equals(str(m.get(key("type"))))) {
                sb.append("|retracted");
            }
            return sb.toString();
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static Value key(String s) {
        return org.msgpack.value.ValueFactory.newString(s);
    }

    private static String str(Value v) {
        return v != null && v.isStringValue() ? v.asStringValue().asString() : null;
    }
}
