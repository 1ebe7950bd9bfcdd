package io.revstream.peer;

import java.io.IOException;
import java.time.Instant;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.core.buffer.ArrayBufferInput;
import org.msgpack.value.ValueType;

/**
 * One input record, decoded from the msgpack map that revstream's encoder writes (src/event.c,
 * schemas/envelope.json), keeping only what SLA-01 reads.
 *
 * <p>Validity follows revstream's decoder where it decides what SLA-01 sees: an event missing
 * {@code type}, {@code id} or a valid {@code ts}, or a lead.created / lead.touched missing one of
 * its required fields or carrying a value outside its enum, is rejected (revstream sends it to
 * the dead-letter topic; the peer skips it). nil counts as absent, and a repeated key keeps the
 * last value, as in the schemas. Length limits and the fields of other event types are not
 * checked: those types are ignored anyway.
 */
final class Event {
    /** The largest event time the envelope allows: 9999-12-31T23:59:59.999Z. */
    static final long TS_MAX = 253402300799999L;

    enum Type { CREATED, TOUCHED, CANCEL, MERGED, OTHER }

    enum Tier { HIGH, MQL, LOW }

    Type type;
    long ts;
    String leadId;
    Tier tier;
    /** lead.touched: actor_type human and direction outbound, the only touch that responds. */
    boolean humanOutbound;

    /** Marks a field present with a value of the wrong msgpack kind (compared by identity). */
    @SuppressWarnings("StringOperationCanBeSimplified")
    private static final String BAD = new String("\0bad");

    private Event() {}

    /**
     * One unpacker per stream thread, reset for each record: a new one allocates an 8 Ki-char
     * string decoding buffer on its first string, which costs more than decoding the record.
     */
    private static final ThreadLocal<MessageUnpacker> UNPACKER =
            ThreadLocal.withInitial(() -> MessagePack.newDefaultUnpacker(new byte[0]));

    /** The thread's unpacker, positioned at the start of {@code value}. */
    static MessageUnpacker unpacker(byte[] value) throws IOException {
        MessageUnpacker u = UNPACKER.get();
        u.reset(new ArrayBufferInput(value));
        return u;
    }

    /** Decodes one record value; null when revstream's decoder would reject it too. */
    static Event decode(byte[] value) {
        if (value == null) {
            return null;
        }
        try {
            return decode(unpacker(value));
        } catch (IOException | RuntimeException e) {
            return null; // truncated, not msgpack, integer out of range: all a bad record
        }
    }

    private static Event decode(MessageUnpacker u) throws IOException {
        if (!u.hasNext() || u.getNextFormat().getValueType() != ValueType.MAP) {
            return null;
        }
        String type = null, id = null, leadId = null, tier = null, channel = null;
        String segment = null, repId = null, actor = null, direction = null, reason = null;
        String intoLeadId = null, contactId = null;
        Boolean connected = null;
        long ts = 0;
        boolean tsSet = false;

        int n = u.unpackMapHeader();
        for (int i = 0; i < n; i++) {
            if (u.getNextFormat().getValueType() != ValueType.STRING) {
                u.skipValue(2); // a non-string key and its value: not one of ours
                continue;
            }
            String key = u.unpackString();
            switch (key) {
                case "ts" -> {
                    Long t = u.getNextFormat() == MessageFormat.NIL ? nil(u) : timestamp(u);
                    tsSet = t != null;
                    ts = t != null ? t : 0;
                }
                case "connected" -> {
                    ValueType vt = u.getNextFormat().getValueType();
                    connected = vt == ValueType.BOOLEAN ? Boolean.valueOf(u.unpackBoolean()) : nil(u);
                }
                case "type" -> type = string(u);
                case "id" -> id = string(u);
                case "lead_id" -> leadId = string(u);
                case "intent_tier" -> tier = string(u);
                case "channel" -> channel = string(u);
                case "segment" -> segment = string(u);
                case "rep_id" -> repId = string(u);
                case "actor_type" -> actor = string(u);
                case "direction" -> direction = string(u);
                case "reason" -> reason = string(u);
                case "into_lead_id" -> intoLeadId = string(u);
                case "contact_id" -> contactId = string(u);
                default -> u.skipValue();
            }
        }
        if (u.hasNext() || !ident(type) || !ident(id) || !tsSet) { // one map, nothing after it
            return null;
        }
        Event ev = new Event();
        ev.ts = ts;
        ev.leadId = leadId;
        switch (type) {
            case "lead.created" -> {
                ev.type = Type.CREATED;
                ev.tier = tierOf(tier);
                if (!ident(leadId) || ev.tier == null || !text(channel) || !text(segment)) {
                    return null;
                }
            }
            case "lead.touched" -> {
                ev.type = Type.TOUCHED;
                boolean human = "human".equals(actor), outbound = "outbound".equals(direction);
                if (!ident(leadId) || !ident(repId) || !(human || "automation".equals(actor))
                        || !(outbound || "inbound".equals(direction)) || !touchChannel(channel)
                        || connected == null) {
                    return null;
                }
                ev.humanOutbound = human && outbound;
            }
            case "lead.disqualified" -> {
                ev.type = Type.CANCEL;
                if (!ident(leadId) || !text(reason)) {
                    return null;
                }
            }
            case "lead.converted" -> {
                ev.type = Type.CANCEL;
                if (!ident(leadId) || !ident(contactId)) {
                    return null;
                }
            }
            case "lead.merged" -> {
                ev.type = Type.MERGED;
                if (!ident(leadId) || !ident(intoLeadId)) {
                    return null;
                }
                if (leadId.equals(intoLeadId)) {
                    ev.type = Type.OTHER; // merged into itself: nothing moves
                }
            }
            default -> ev.type = Type.OTHER;
        }
        return ev;
    }

    /** A string value; null for nil (absent); BAD for a value of another kind. */
    private static String string(MessageUnpacker u) throws IOException {
        MessageFormat f = u.getNextFormat();
        if (f == MessageFormat.NIL) {
            u.unpackNil();
            return null;
        }
        if (f.getValueType() == ValueType.STRING) {
            return u.unpackString();
        }
        u.skipValue();
        return BAD;
    }

    /** Skips a value that is nil or of the wrong kind: either way, the field has no value. */
    private static <T> T nil(MessageUnpacker u) throws IOException {
        u.skipValue();
        return null;
    }

    private static boolean ident(String s) {
        return s != null && s != BAD && !s.isEmpty();
    }

    private static boolean text(String s) {
        return s != null && s != BAD;
    }

    private static Tier tierOf(String s) {
        if (s == null) {
            return null;
        }
        return switch (s) {
            case "high" -> Tier.HIGH;
            case "mql" -> Tier.MQL;
            case "low" -> Tier.LOW;
            default -> null;
        };
    }

    private static boolean touchChannel(String s) {
        if (s == null) {
            return false;
        }
        return switch (s) {
            case "call", "email", "sms", "chat", "meeting", "social" -> true;
            default -> false;
        };
    }

    /**
     * The event time in ms: a msgpack integer, or a timestamp extension (type -1) truncated to
     * whole milliseconds. Null when it is neither, or outside 1 ms .. TS_MAX.
     */
    static Long timestamp(MessageUnpacker u) throws IOException {
        MessageFormat f = u.getNextFormat();
        long ms;
        if (f.getValueType() == ValueType.INTEGER) {
            if (f == MessageFormat.UINT64) {
                java.math.BigInteger b = u.unpackBigInteger();
                return b.bitLength() < 63 && b.longValue() <= TS_MAX ? b.longValue() : null;
            }
            ms = u.unpackLong();
        } else if (f.getValueType() == ValueType.EXTENSION) {
            var header = u.unpackExtensionTypeHeader();
            if (header.getType() != -1) {
                u.readPayload(header.getLength());
                return null;
            }
            Instant t = u.unpackTimestamp(header);
            try {
                ms = Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1000L), t.getNano() / 1_000_000);
            } catch (ArithmeticException e) {
                return null;
            }
        } else {
            u.skipValue();
            return null;
        }
        return ms >= 1 && ms <= TS_MAX ? ms : null;
    }
}
