package io.revstream.peer;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * {@code --gen-events LEADS SEED T0_MS [SPACING_MS]}: JSON lines for `revstream send`, in
 * increasing event time, exercising every case SLA-01's L1 breach depends on. Lead i is created
 * at T0 + i * SPACING (default 10 min, so the low tier's day-long clock fires by stream time for
 * the early leads and not for the last ones), one of 50 accounts, a third of each tier, and then:
 *
 * <pre>
 *   30%  a human outbound touch in time          (met)
 *   10%  one exactly at the threshold            (met: a touch at the threshold meets it)
 *   10%  one at the threshold + 1 ms             (breach, from the touch or from stream time)
 *   15%  one later, up to twice the threshold    (breach)
 *   10%  none                                    (breach once stream time gets there)
 *    5%  one before lead.created (clock skew)    (met, kept until the lead arrives)
 *    5%  disqualified halfway, never touched     (cancelled: no breach)
 *   10%  only an automated or an inbound touch   (not a response: breach)
 *    5%  a duplicate lead.created later, then in time (the first creation holds: met)
 * </pre>
 *
 * plus a lead.assigned for every fourth lead (ignored by SLA-01) and, after an on-time touch,
 * sometimes a second, late one (changes nothing). Same arguments, same lines.
 */
final class EventGen {
    private record Line(long ts, long seq, String json) {}

    private EventGen() {}

    static int run(long leads, long seed, long t0, long spacing) throws IOException {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<Line> out = new ArrayList<>();
        long[] seq = {0};
        String[] tiers = {"high", "mql", "low"};
        long[] thr = {5 * 60_000L, 60 * 60_000L, 24 * 3_600_000L};
        for (long i = 0; i < leads; i++) {
            String lead = String.format("L-%07d", i);
            String acct = "acct-" + (i % 50);
            int tier = rnd.nextInt(3);
            long created = t0 + i * spacing + rnd.nextLong(1000);
            long th = thr[tier];
            String c = created(lead, acct, tiers[tier], i);
            add(out, seq, created, c.replace("%ID%", "e-" + lead + "-c").replace("%TS%", Long.toString(created)));
            if (i % 4 == 0) {
                add(out, seq, created + 1000, ev(lead, acct, "lead.assigned", created + 1000, lead + "-a",
                        "\"owner_id\":\"rep-" + (i % 12) + "\""));
            }
            int roll = rnd.nextInt(100);
            if (roll < 30) {
                long t = created + rnd.nextLong(th);
                add(out, seq, t, touch(lead, acct, t, "t1", "human", "outbound"));
                if (rnd.nextInt(4) == 0) {
                    long t2 = created + th + 1 + rnd.nextLong(th);
                    add(out, seq, t2, touch(lead, acct, t2, "t2", "human", "outbound"));
                }
            } else if (roll < 40) {
                add(out, seq, created + th, touch(lead, acct, created + th, "t1", "human", "outbound"));
            } else if (roll < 50) {
                add(out, seq, created + th + 1, touch(lead, acct, created + th + 1, "t1", "human", "outbound"));
            } else if (roll < 65) {
                long t = created + th + 1 + rnd.nextLong(th);
                add(out, seq, t, touch(lead, acct, t, "t1", "human", "outbound"));
            } else if (roll < 75) {
                // never touched
            } else if (roll < 80) {
                long t = created - 1 - rnd.nextLong(60_000);
                add(out, seq, t, touch(lead, acct, t, "t1", "human", "outbound"));
            } else if (roll < 85) {
                long t = created + th / 2;
                add(out, seq, t, ev(lead, acct, "lead.disqualified", t, lead + "-d", "\"reason\":\"spam\""));
            } else if (roll < 95) {
                long t = created + rnd.nextLong(th);
                boolean auto = rnd.nextBoolean();
                add(out, seq, t, touch(lead, acct, t, "t1", auto ? "automation" : "human", auto ? "outbound" : "inbound"));
            } else {
                long dup = created + rnd.nextLong(th / 2) + 1;
                add(out, seq, dup, c.replace("%ID%", "e-" + lead + "-c2").replace("%TS%", Long.toString(dup)));
                long t = created + th; // met against the first creation, whatever the second says
                add(out, seq, t, touch(lead, acct, t, "t1", "human", "outbound"));
            }
        }
        out.sort(Comparator.comparingLong(Line::ts).thenComparingLong(Line::seq));
        BufferedWriter w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
        for (Line l : out) {
            w.write(l.json);
            w.write('\n');
        }
        w.flush();
        return 0;
    }

    private static void add(List<Line> out, long[] seq, long ts, String json) {
        out.add(new Line(ts, seq[0]++, json));
    }

    private static String created(String lead, String acct, String tier, long i) {
        return "{\"type\":\"lead.created\",\"id\":\"%ID%\",\"ts\":%TS%,\"account\":\"" + acct + "\",\"lead_id\":\""
                + lead + "\",\"channel\":\"demo_request\",\"intent_tier\":\"" + tier
                + "\",\"segment\":\"smb\",\"owner_id\":\"rep-" + (i % 12) + "\"}";
    }

    private static String touch(String lead, String acct, long ts, String n, String actor, String dir) {
        return ev(lead, acct, "lead.touched", ts, lead + "-" + n, "\"rep_id\":\"rep-1\",\"actor_type\":\"" + actor
                + "\",\"channel\":\"call\",\"direction\":\"" + dir + "\",\"connected\":true");
    }

    private static String ev(String lead, String acct, String type, long ts, String id, String rest) {
        return "{\"type\":\"" + type + "\",\"id\":\"e-" + id + "\",\"ts\":" + ts + ",\"account\":\"" + acct
                + "\",\"lead_id\":\"" + lead + "\"," + rest + "}";
    }
}
