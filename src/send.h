/*
 * send.h - `revstream send`: JSON lines in, msgpack events on a Kafka topic out.
 *
 * Each non-blank line of the input is one JSON object in the shape of schemas/ (the wire is
 * msgpack, JSON is how people write events by hand). Every line is converted and checked with
 * the engine's own decoder before anything is sent, so a file with one bad line sends nothing
 * and the error names the file, the line and the problem. Events are keyed as DESIGN.md says
 * (the account, or the lead for a lead with no account) and carry their event time as the
 * record timestamp unless it lies in the future. This is the only module that includes
 * jansson.h. Main thread; owns its loop.
 */
#ifndef RS_SEND_H
#define RS_SEND_H

#include "config.h"
#include "err.h"

/*
 * Send the events of `path` ("-" for standard input) to `topic` (NULL: cfg's events topic).
 * Returns 0 after every event was acknowledged; RS_EDECODE (nothing sent) with err naming
 * "FILE:LINE: problem"; -errno if the input cannot be read; RS_EKAFKA if delivery failed.
 */
int rs_send_run(const struct rs_config *cfg, const char *topic, const char *path,
                struct rs_err *err);

#endif
