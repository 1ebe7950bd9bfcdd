package io.revstream.peer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessagePack;

/** The SLA-01 L1 rules of src/sla.c, through the real topology and its RocksDB stores. */
class SlaProcessorTest {
    private static final long T = 1_772_409_600_000L; // 2026-03-02T00:00:00Z
    private static final long HIGH = 5 * 60_000L, MQL = 60 * 60_000L;

    @TempDir
    Path stateDir;

    private TopologyTestDriver driver;
    private TestInputTopic<byte[], byte[]> in;
    private TestOutputTopic<String, String> out;
    private RunState run;
    private int seq;

    private void start(long latenessMs, long punctuateMs) {
        PeerRun.Options o = new PeerRun.Options();
        o.input = "events";
        o.alerts = "alerts";
        o.latenessMs = latenessMs;
        o.punctuateMs = punctuateMs;
        run = new RunState(o.highMs, o.mqlMs, o.lowMs, o.latenessMs, o.punctuateMs);
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "peer-test");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        driver = new TopologyTestDriver(PeerRun.topology(o, run), p);
        in = driver.createInputTopic("events", new ByteArraySerializer(), new ByteArraySerializer());
        out = driver.createOutputTopic("alerts", new StringDeserializer(), new StringDeserializer());
    }

    @AfterEach
    void close() {
        if (driver != null) {
            driver.close();
        }
    }

    /** A msgpack map of alternating keys and values, as rs_event_encode writes it. */
    private static byte[] map(Object... kv) throws IOException {
        try (MessageBufferPacker pk = MessagePack.newDefaultBufferPacker()) {
            pk.packMapHeader(kv.length / 2);
            for (Object o : kv) {
                if (o instanceof String s) {
                    pk.packString(s);
                } else if (o instanceof Long l) {
                    pk.packLong(l);
                } else if (o instanceof Boolean b) {
                    pk.packBoolean(b);
                } else if (o instanceof java.time.Instant t) {
                    pk.packTimestamp(t);
                } else {
                    pk.packNil();
                }
            }
            return pk.toByteArray();
        }
    }

    private void send(byte[] value) {
        in.pipeInput("acct-1".getBytes(), value);
    }

    private void created(String lead, String tier, long ts) throws IOException {
        send(map("type", "lead.created", "id", "e" + seq++, "ts", ts, "account", "acct-1", "lead_id", lead,
                "channel", "demo_request", "intent_tier", tier, "segment", "smb"));
    }

    private void touched(String lead, long ts, String actor, String direction) throws IOException {
        send(map("type", "lead.touched", "id", "e" + seq++, "ts", ts, "lead_id", lead, "rep_id", "rep-1",
                "actor_type", actor, "channel", "call", "direction", direction, "connected", true));
    }

    private void touched(String lead, long ts) throws IOException {
        touched(lead, ts, "human", "outbound");
    }

    /** Moves stream time with an event SLA-01 ignores. */
    private void tick(long ts) throws IOException {
        send(map("type", "lead.assigned", "id", "e" + seq++, "ts", ts, "lead_id", "other", "owner_id", "rep-2"));
    }

    private List<String> alerts() {
        return out.readValuesToList();
    }

    @Test
    void touchAtTheThresholdMeetsAndOneMillisecondLaterBreaches() throws IOException {
        start(0, 1);
        created("A", "high", T);
        created("B", "high", T);
        touched("A", T + HIGH);
        touched("B", T + HIGH + 1); // before stream time fired it: the touch publishes the breach
        tick(T + 10 * HIGH);
        assertEquals(List.of("B|L1_breach|" + (T + HIGH)), alerts());
    }

    @Test
    void streamTimeFiresAtThresholdPlusOneMillisecond() throws IOException {
        start(0, 1);
        created("A", "high", T);
        tick(T + HIGH);
        assertTrue(out.isEmpty(), "not due at the threshold itself");
        tick(T + HIGH + 1);
        assertEquals(List.of("A|L1_breach|" + (T + HIGH)), alerts());
        touched("A", T + HIGH + 2); // a response after the breach publishes no second breach
        tick(T + 3 * HIGH);
        assertTrue(out.isEmpty());
        assertEquals(1, run.alerts.sum());
    }

    @Test
    void latenessDelaysTheTimerButNotTheOutcome() throws IOException {
        start(10 * 60_000L, 1000);
        created("A", "high", T);
        tick(T + HIGH + 1 + 10 * 60_000L - 1000);
        assertTrue(out.isEmpty(), "the watermark trails stream time by the lateness");
        tick(T + HIGH + 1 + 10 * 60_000L);
        assertEquals(List.of("A|L1_breach|" + (T + HIGH)), alerts());
    }

    @Test
    void onlyHumanOutboundTouchesStopTheClock() throws IOException {
        start(0, 1);
        created("A", "mql", T);
        touched("A", T + 1, "automation", "outbound");
        touched("A", T + 2, "human", "inbound");
        tick(T + MQL + 1);
        assertEquals(List.of("A|L1_breach|" + (T + MQL)), alerts());
    }

    @Test
    void touchBeforeCreationIsKeptForTheLead() throws IOException {
        start(0, 1);
        touched("A", T - 1000); // clock skew: met, response 0
        created("A", "high", T);
        touched("B", T + HIGH + 1); // arrives before its lead.created, late
        created("B", "high", T);
        tick(T + 10 * HIGH);
        assertEquals(List.of("B|L1_breach|" + (T + HIGH)), alerts());
    }

    @Test
    void duplicateCreationKeepsTheFirstClockAndCancelsStopIt() throws IOException {
        start(0, 1);
        created("A", "high", T);
        created("A", "low", T + 60_000L); // ignored: the first lead.created holds
        created("C", "high", T);
        send(map("type", "lead.disqualified", "id", "e" + seq++, "ts", T + 1000, "lead_id", "C", "reason", "spam"));
        created("D", "high", T);
        send(map("type", "lead.converted", "id", "e" + seq++, "ts", T + 1000, "lead_id", "D", "contact_id", "c1"));
        tick(T + HIGH + 1);
        assertEquals(List.of("A|L1_breach|" + (T + HIGH)), alerts());
    }

    @Test
    void recordsRevstreamWouldRejectAreCountedAndSkipped() throws IOException {
        start(0, 1);
        send(new byte[] {1, 2, 3}); // not a map
        send(map("type", "lead.created", "id", "x", "ts", T, "lead_id", "A", "channel", "web", "intent_tier", "urgent",
                "segment", "smb")); // tier outside its enum
        send(map("type", "lead.created", "id", "x", "ts", T, "lead_id", "B", "intent_tier", "high", "segment",
                "smb")); // no channel
        send(map("type", "lead.created", "id", "x", "ts", null, "lead_id", "C", "channel", "web", "intent_tier",
                "high", "segment", "smb")); // nil ts is no ts
        tick(T + 10 * HIGH);
        assertTrue(out.isEmpty());
        assertEquals(4, run.invalid.sum());
        assertEquals(5, run.records.sum());
    }

    @Test
    void timestampExtensionIsEventTime() throws IOException {
        start(0, 1);
        send(map("type", "lead.created", "id", "e1", "ts", java.time.Instant.ofEpochMilli(T).plusNanos(999_999),
                "lead_id", "A", "channel", "web", "intent_tier", "high", "segment", "smb"));
        send(map("type", "lead.assigned", "id", "e2", "ts", java.time.Instant.ofEpochMilli(T + HIGH + 1), "lead_id",
                "Z", "owner_id", "rep-1"));
        assertEquals(List.of("A|L1_breach|" + (T + HIGH)), alerts());
    }

    @Test
    void decodeReadsWhatSlaOneNeeds() throws IOException {
        Event e = Event.decode(map("type", "lead.touched", "id", "e", "ts", T, "lead_id", "L", "rep_id", "r",
                "actor_type", "human", "channel", "call", "direction", "outbound", "connected", false, "extra",
                List.of().toString()));
        assertEquals(Event.Type.TOUCHED, e.type);
        assertEquals(T, e.ts);
        assertTrue(e.humanOutbound);
        assertNull(Event.decode(map("type", "lead.touched", "id", "e", "ts", T, "lead_id", "L", "rep_id", "r",
                "actor_type", "human", "channel", "fax", "direction", "outbound", "connected", false)));
        assertNull(Event.decode(map("type", "x", "id", "e", "ts", 253402300800000L)), "ts past year 9999");
    }
}
