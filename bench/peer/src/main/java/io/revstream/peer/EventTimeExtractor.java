package io.revstream.peer;

import java.io.IOException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.value.ValueType;

/**
 * Stream time is event time: the {@code ts} of the msgpack map, not the record timestamp, which
 * `revstream send` sets to the send time for events in the future (brokers refuse those).
 *
 * <p>A record without a valid {@code ts} gets the partition's time so far (or its record
 * timestamp before any): Kafka Streams drops a record whose timestamp is negative, and the
 * processor must still see it to count it. It then skips it, as revstream dead-letters it.
 */
public final class EventTimeExtractor implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
        long fallback = partitionTime >= 0 ? partitionTime : Math.max(record.timestamp(), 0);
        if (!(record.value() instanceof byte[] value)) {
            return fallback;
        }
        Long ts = null;
        try {
            MessageUnpacker u = Event.unpacker(value);
            if (u.hasNext() && u.getNextFormat().getValueType() == ValueType.MAP) {
                int n = u.unpackMapHeader();
                for (int i = 0; i < n; i++) {
                    if (u.getNextFormat().getValueType() != ValueType.STRING) {
                        u.skipValue(2); // a key of another kind, and its value
                    } else if ("ts".equals(u.unpackString())) {
                        ts = Event.timestamp(u); // the last "ts" wins, as in the decoder
                    } else {
                        u.skipValue();
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            return fallback;
        }
        return ts != null ? ts : fallback;
    }
}
