/*
 * replay.h - `revstream replay`: rebuild state from the events topic into a directory of its
 * own, from a time or offsets to the end offsets captured at the start (or a given end).
 *
 * The engine runs as a replay (app.h, struct rs_app_replay): partitions assigned directly,
 * no group joined and nothing committed, timers on event time only, outputs to topics of
 * their own (topic.* + suffix) or none. The range is stored in the directory, so a paused
 * replay (SIGINT/SIGTERM: the batch commits, exit 3) continues with --resume, and a directory
 * that already holds state is refused without it. Offsets by time come from
 * rd_kafka_offsets_for_times (Kafka record timestamps), resolved before the loop starts.
 *
 * Main thread; owns its loop.
 */
#ifndef RS_REPLAY_H
#define RS_REPLAY_H

#include "cli.h"
#include "config.h"

/* Exit codes: 0 done, 1 failure, 2 bad usage or configuration, 3 paused. */
#define RS_REPLAY_PAUSED 3

/* Run the replay that cli describes over cfg (changed: state.dir, output topics, http.bind). */
int rs_replay_run(struct rs_config *cfg, const struct rs_cli *cli);

#endif
