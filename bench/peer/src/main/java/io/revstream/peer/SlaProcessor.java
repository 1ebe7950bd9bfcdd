package io.revstream.peer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * SLA-01 speed to lead, L1 breaches only, as revstream's src/sla.c decides them.
 *
 * <p>lead.created starts a clock of its tier's threshold; the first human outbound lead.touched
 * stops it; the breach is due at created + threshold + 1 ms, so a touch exactly at the threshold
 * meets the SLA. A breach fires either from stream time (the punctuator, once stream time minus
 * the allowed lateness reaches the due instant) or from a touch at or after the due instant that
 * arrives before the punctuator fired it: either way one {@code lead_id|L1_breach|target_ms}
 * record on the alerts topic, keyed by lead id, target_ms being created + threshold (revstream's
 * {@code target_at}). A touch before lead.created is kept and applied when it arrives; a
 * duplicate lead.created is ignored; lead.disqualified and lead.converted cancel the clock;
 * lead.merged cancels the merged lead's (the survivor's clock is left as it is: revstream also
 * moves its start and touch, which the benchmark does not exercise). Not reproduced: the warning
 * and escalation levels, recoveries, retractions, dedup by event id (a duplicate event changes
 * no L1 breach), tenants.
 *
 * <p>State, per task (one input partition): {@code leads}, lead id to its record, and
 * {@code deadlines}, big-endian due instant then lead id, so the due breaches are a range scan
 * from the last scanned instant. Both are Kafka Streams' default persistent (RocksDB) stores.
 */
final class SlaProcessor implements Processor<byte[], byte[], String, String> {
    static final String LEADS = "leads";
    static final String DEADLINES = "deadlines";
    static final String LEVEL = "L1_breach";

    private static final byte F_CREATED = 1;
    private static final byte F_TOUCHED = 2; // touchedMs holds the first response
    private static final byte F_FIRED = 4; // the L1 breach was published
    private static final byte F_CANCELLED = 8;
    private static final int RECORD_LEN = 1 + 8 + 8 + 8;
    private static final byte[] EMPTY = new byte[0];

    private final RunState run;
    private ProcessorContext<String, String> ctx;
    private KeyValueStore<Bytes, byte[]> leads;
    private KeyValueStore<Bytes, byte[]> deadlines;
    private int partition;
    /**
     * Every deadline at or before this instant was handled; a deadline armed behind it (a
     * lead.created older than the watermark) fires at once. In memory only: a new task scans
     * from the start once.
     */
    private long scannedTo = Long.MIN_VALUE;
    /**
     * No deadline is earlier than this (a lower bound: a touch deletes its deadline without
     * raising it); MIN_VALUE until the first scan tells.
     */
    private long nextDue = Long.MIN_VALUE;
    private boolean drained;

    /** A lead record, decoded. */
    private static final class Lead {
        byte flags;
        long createdMs;
        long dueMs; // created + threshold + 1: the first late instant
        long touchedMs;

        boolean open() {
            return (flags & (F_CREATED | F_TOUCHED | F_CANCELLED)) == F_CREATED;
        }

        byte[] encode() {
            return ByteBuffer.allocate(RECORD_LEN).put(flags).putLong(createdMs).putLong(dueMs).putLong(touchedMs)
                    .array();
        }

        static Lead decode(byte[] b) {
            Lead l = new Lead();
            if (b != null) {
                ByteBuffer bb = ByteBuffer.wrap(b);
                l.flags = bb.get();
                l.createdMs = bb.getLong();
                l.dueMs = bb.getLong();
                l.touchedMs = bb.getLong();
            }
            return l;
        }
    }

    SlaProcessor(RunState run) {
        this.run = run;
    }

    @Override
    public void init(ProcessorContext<String, String> context) {
        ctx = context;
        leads = context.getStateStore(LEADS);
        deadlines = context.getStateStore(DEADLINES);
        partition = context.taskId().partition();
        context.schedule(Duration.ofMillis(run.punctuateMs), PunctuationType.STREAM_TIME, this::fireDue);
        // End of the benchmark input: stream time stops with the last record, so the last
        // stream-time punctuation may lie up to punctuateMs before it. Once every record is
        // in, this scans once more at the task's final stream time.
        context.schedule(Duration.ofMillis(100), PunctuationType.WALL_CLOCK_TIME, now -> {
            if (!drained && run.draining()) {
                long st = ctx.currentStreamTimeMs();
                if (st >= 0) {
                    fireDue(st);
                }
                drained = true;
                run.drained(partition);
            }
        });
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        Event ev = Event.decode(record.value());
        if (ev == null) {
            run.invalid.increment();
        } else {
            switch (ev.type) {
                case CREATED -> onCreated(ev);
                case TOUCHED -> onTouched(ev);
                case CANCEL, MERGED -> onCancel(ev);
                case OTHER -> {}
            }
        }
        run.records.increment();
    }

    private void onCreated(Event ev) {
        Bytes key = leadKey(ev.leadId);
        Lead l = Lead.decode(leads.get(key));
        if ((l.flags & F_CREATED) != 0) {
            return; // a duplicate lead.created: the first one holds
        }
        l.flags |= F_CREATED;
        l.createdMs = ev.ts;
        l.dueMs = ev.ts + run.thresholdMs(ev.tier) + 1;
        if ((l.flags & F_CANCELLED) != 0) {
            // disqualified or converted before we saw it created: no clock
        } else if ((l.flags & F_TOUCHED) != 0) {
            if (l.touchedMs >= l.dueMs) {
                breach(ev.leadId, l);
            }
        } else if (l.dueMs <= scannedTo) {
            breach(ev.leadId, l); // due behind the watermark already
        } else {
            deadlines.put(deadlineKey(l.dueMs, key), EMPTY);
            nextDue = Math.min(nextDue, l.dueMs);
        }
        leads.put(key, l.encode());
    }

    private void onTouched(Event ev) {
        if (!ev.humanOutbound) {
            return; // SLA-01 counts rep-initiated outbound touches only
        }
        Bytes key = leadKey(ev.leadId);
        Lead l = Lead.decode(leads.get(key));
        if ((l.flags & F_CREATED) == 0) {
            // Before its lead.created: keep the earliest touch for when it arrives.
            if ((l.flags & F_TOUCHED) != 0 && l.touchedMs <= ev.ts) {
                return;
            }
            l.flags |= F_TOUCHED;
            l.touchedMs = ev.ts;
        } else if (l.open()) {
            if ((l.flags & F_FIRED) == 0) {
                if (ev.ts >= l.dueMs) {
                    breach(ev.leadId, l); // late, and stream time had not fired it yet
                }
                deadlines.delete(deadlineKey(l.dueMs, key));
            }
            l.flags |= F_TOUCHED;
            l.touchedMs = ev.ts;
        } else {
            return; // a later touch, or a cancelled lead: no L1 breach changes
        }
        leads.put(key, l.encode());
    }

    private void onCancel(Event ev) {
        Bytes key = leadKey(ev.leadId);
        Lead l = Lead.decode(leads.get(key));
        if ((l.flags & F_CREATED) == 0) {
            l.flags |= F_CANCELLED;
        } else if (l.open()) {
            l.flags |= F_CANCELLED;
            if ((l.flags & F_FIRED) == 0) {
                deadlines.delete(deadlineKey(l.dueMs, key));
            }
        } else {
            return;
        }
        leads.put(key, l.encode());
    }

    /**
     * Fires every breach due at stream time {@code streamMs} less the allowed lateness.
     *
     * <p>The scan is open-ended: the first deadline past the watermark becomes {@link #nextDue},
     * and punctuations before it open no iterator. That matters beyond the scan itself: in
     * Kafka Streams 4.1 opening the first iterator of a store registers a JMX metric and
     * closing it removes it again (KAFKA-19678), far dearer than the RocksDB seek.
     */
    private void fireDue(long streamMs) {
        long watermark = streamMs - run.latenessMs;
        if (watermark < 1 || watermark <= scannedTo) {
            return; // nothing is due before 2 ms (ts >= 1, threshold >= 1 ms), nor twice
        }
        if (nextDue > watermark) {
            scannedTo = watermark; // nothing at all is due up to nextDue
            return;
        }
        long from = scannedTo == Long.MIN_VALUE ? 0 : scannedTo + 1;
        List<Bytes> due = new ArrayList<>();
        long next = Long.MAX_VALUE;
        try (KeyValueIterator<Bytes, byte[]> it = deadlines.range(Bytes.wrap(be(from)), null)) {
            while (it.hasNext()) {
                Bytes k = it.next().key;
                long d = ByteBuffer.wrap(k.get()).getLong();
                if (d > watermark) {
                    next = d;
                    break;
                }
                due.add(k);
            }
        }
        for (Bytes dk : due) {
            byte[] k = dk.get();
            Bytes key = Bytes.wrap(Arrays.copyOfRange(k, 8, k.length));
            Lead l = Lead.decode(leads.get(key));
            if (l.open() && (l.flags & F_FIRED) == 0) {
                breach(new String(key.get(), StandardCharsets.UTF_8), l);
                leads.put(key, l.encode());
            }
            deadlines.delete(dk);
        }
        scannedTo = watermark;
        nextDue = next;
    }

    private static byte[] be(long v) {
        return ByteBuffer.allocate(8).putLong(v).array();
    }

    /**
     * Publishes the breach. The record's timestamp is the wall clock: event time may lie in the
     * future, which brokers refuse (more than message.timestamp.after.max.ms ahead).
     */
    private void breach(String leadId, Lead l) {
        l.flags |= F_FIRED;
        long targetMs = l.dueMs - 1;
        ctx.forward(new Record<>(leadId, leadId + "|" + LEVEL + "|" + targetMs, ctx.currentSystemTimeMs()));
        run.alerts.increment();
    }

    private static Bytes leadKey(String leadId) {
        return Bytes.wrap(leadId.getBytes(StandardCharsets.UTF_8));
    }

    private static Bytes deadlineKey(long dueMs, Bytes lead) {
        byte[] id = lead.get();
        return Bytes.wrap(ByteBuffer.allocate(8 + id.length).putLong(dueMs).put(id).array());
    }
}
