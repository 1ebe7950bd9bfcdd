/*
 * demo.h - `revstream demo`: the whole pipeline on librdkafka's in-process mock cluster.
 *
 * A seeded generator writes a realistic stream of a SaaS funnel (leads and touches on time,
 * late, never contacted, disqualified, automated noise; qualification, opportunities through
 * stages, wins and losses, handoffs, onboarding with pauses, reps with quotas; a few
 * malformed messages) to the events topic, pacing itself on a compressed clock; the same engine as
 * `revstream run` consumes it with that clock injected, so live wall-clock firing is what the demo
 * shows; a second consumer reads the alerts topic as a downstream service would and prints each
 * alert. Main thread; owns its loop.
 */
#ifndef RS_DEMO_H
#define RS_DEMO_H

#include <stdbool.h>
#include <stdint.h>

struct rs_demo_options {
    uint64_t seed;
    uint32_t leads;
    double speed; /* simulated ms per wall ms */
    bool json;
};

/* Run the demo to the end. Returns the exit code (0 ok, 1 failure). */
int rs_demo_run(const struct rs_demo_options *opts);

#endif
