package io.revstream.peer;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** What the stream threads and the main thread share during one run. */
final class RunState {
    final long highMs, mqlMs, lowMs;
    /** The watermark trails stream time by this much, as revstream's time.max_out_of_orderness. */
    final long latenessMs;
    /** Stream-time punctuation interval. */
    final long punctuateMs;

    final LongAdder records = new LongAdder();
    final LongAdder invalid = new LongAdder();
    final LongAdder alerts = new LongAdder();
    private volatile boolean draining;
    private final Set<Integer> drained = ConcurrentHashMap.newKeySet();

    RunState(long highMs, long mqlMs, long lowMs, long latenessMs, long punctuateMs) {
        this.highMs = highMs;
        this.mqlMs = mqlMs;
        this.lowMs = lowMs;
        this.latenessMs = latenessMs;
        this.punctuateMs = punctuateMs;
    }

    long thresholdMs(Event.Tier tier) {
        return switch (tier) {
            case HIGH -> highMs;
            case MQL -> mqlMs;
            case LOW -> lowMs;
        };
    }

    /** Every expected record is in: each task scans once more at its final stream time. */
    void startDrain() {
        draining = true;
    }

    boolean draining() {
        return draining;
    }

    void drained(int partition) {
        drained.add(partition);
    }

    int drainedCount() {
        return drained.size();
    }
}
