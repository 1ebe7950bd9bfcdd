package io.revstream.peer;

import java.nio.file.Path;

/** Entry point: the SLA-01 peer run, or one of its helper modes. */
public final class Main {
    private static final String USAGE = String.join("\n",
            "usage: java -jar revstream-peer.jar BROKERS INPUT_TOPIC ALERTS_TOPIC STATE_DIR EXPECTED_RECORDS [OPTIONS]",
            "       java -jar revstream-peer.jar --dump-alerts BROKERS TOPIC [--with-target]",
            "       java -jar revstream-peer.jar --gen-events LEADS SEED T0_MS [SPACING_MS]",
            "       java -jar revstream-peer.jar --create-topics BROKERS PARTITIONS TOPIC...",
            "       java -jar revstream-peer.jar --delete-topics BROKERS TOPIC...",
            "",
            "options of a run:",
            "  --lateness-ms N     the watermark trails stream time by N ms (default 600000, revstream's",
            "                      time.max_out_of_orderness default)",
            "  --punctuate-ms N    stream-time punctuation interval (default 1000)",
            "  --high-ms N, --mql-ms N, --low-ms N   SLA-01 thresholds (default 5m, 60m, 1d)",
            "  --threads N         num.stream.threads (default: input partitions, capped by the processors)",
            "  --no-changelog      persistent stores without changelog topics",
            "  --keep              keep the local state and the changelog topics after the run",
            "  --idle-timeout-s N  fail after N s without a new record (default 120)");

    private Main() {}

    public static void main(String[] args) throws Exception {
        System.exit(dispatch(args));
    }

    private static int dispatch(String[] a) throws Exception {
        if (a.length >= 1 && (a[0].equals("-h") || a[0].equals("--help"))) {
            System.out.println(USAGE);
            return 0;
        }
        if (a.length >= 3 && a[0].equals("--dump-alerts")) {
            boolean withTarget = a.length == 4 && a[3].equals("--with-target");
            if (a.length > 4 || (a.length == 4 && !withTarget)) {
                return usage();
            }
            return AlertDump.run(a[1], a[2], withTarget);
        }
        if ((a.length == 4 || a.length == 5) && a[0].equals("--gen-events")) {
            return EventGen.run(num(a[1]), num(a[2]), num(a[3]), a.length == 5 ? num(a[4]) : 10 * 60_000L);
        }
        if (a.length >= 4 && a[0].equals("--create-topics")) {
            PeerRun.createTopics(a[1], (int) num(a[2]), java.util.Arrays.asList(a).subList(3, a.length));
            return 0;
        }
        if (a.length >= 3 && a[0].equals("--delete-topics")) {
            PeerRun.deleteTopics(a[1], java.util.Arrays.asList(a).subList(2, a.length));
            return 0;
        }
        if (a.length < 5 || a[0].startsWith("-")) {
            return usage();
        }
        PeerRun.Options o = new PeerRun.Options();
        o.brokers = a[0];
        o.input = a[1];
        o.alerts = a[2];
        o.stateDir = Path.of(a[3]);
        o.expected = num(a[4]);
        for (int i = 5; i < a.length; i++) {
            String opt = a[i];
            switch (opt) {
                case "--no-changelog" -> o.changelog = false;
                case "--keep" -> o.keep = true;
                default -> {
                    if (i + 1 >= a.length) {
                        return usage();
                    }
                    long v = num(a[++i]);
                    switch (opt) {
                        case "--lateness-ms" -> o.latenessMs = v;
                        case "--punctuate-ms" -> o.punctuateMs = v;
                        case "--high-ms" -> o.highMs = v;
                        case "--mql-ms" -> o.mqlMs = v;
                        case "--low-ms" -> o.lowMs = v;
                        case "--threads" -> o.threads = (int) v;
                        case "--idle-timeout-s" -> o.idleTimeoutS = v;
                        default -> {
                            return usage();
                        }
                    }
                }
            }
        }
        if (o.punctuateMs < 1 || o.highMs < 1 || o.mqlMs < 1 || o.lowMs < 1 || o.latenessMs < 0) {
            System.err.println("peer: error: thresholds and the punctuation interval must be >= 1 ms, lateness >= 0");
            return 2;
        }
        return PeerRun.run(o);
    }

    private static long num(String s) {
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("expected an integer, got '" + s + "'");
        }
    }

    private static int usage() {
        System.err.println(USAGE);
        return 2;
    }
}
