/* distbarrier: this project's own extensions beyond CANN. C API.
 *
 * Arrival statistics answer the question the barrier exists for: which card is slow, and by
 * how much. "Arrival" is when a rank's stream reached its barrier task (not when the host
 * enqueued it). Statistics are recorded once per barrier by the arrival that completes it;
 * DISTBARRIER_STATS=0 or distbarrierSetStatsEnabled(0) turns recording off.
 *
 * Each call names a group and acts for the calling rank: the group name plus the calling
 * thread's current device, as aclnnDistributeBarrier resolves it. */
#ifndef DISTBARRIER_DISTBARRIER_H_
#define DISTBARRIER_DISTBARRIER_H_

#include <stdint.h>

#include "../acl/acl_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DISTBARRIER_VERSION_MAJOR 0
#define DISTBARRIER_VERSION_MINOR 2
#define DISTBARRIER_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH" (the library's, not the header's). */
ACL_FUNC_VISIBILITY const char *distbarrierVersion(void);

/* The last barrier the calling rank passed. */
typedef struct distbarrierBarrierInfo {
    uint64_t sequence;  /* its sequence number (1, 2, ...); 0 when none passed or not recorded */
    uint32_t rankCount; /* ranks in the group */
    int32_t lastRank;   /* the rank that arrived last; -1 when sequence is 0 */
    int64_t spreadNs;   /* last arrival minus first arrival */
} distbarrierBarrierInfo;

/* One rank's lateness since the communicator was made or its statistics were reset.
 * Lateness of a rank in a barrier = its arrival minus the first arrival. */
typedef struct distbarrierRankStats {
    uint64_t barriers;      /* barriers that waited for this rank */
    uint64_t timesLast;     /* how often it arrived last */
    double meanLatenessNs;
    int64_t maxLatenessNs;
} distbarrierRankStats;

/* Fills `info` for the last barrier the calling rank passed. `arrivalNs`, if not null, gets
 * `arrivalCapacity` (>= rankCount) entries: per rank, arrival minus the first arrival in ns,
 * -1 for ranks the barrier did not wait for (elastic mode).
 * ACL_ERROR_INVALID_PARAM for null arguments, an unknown group, no rank on the current
 * device, or too small an arrivalNs. */
ACL_FUNC_VISIBILITY aclError distbarrierGetLastBarrier(const char *group, distbarrierBarrierInfo *info,
                                                       int64_t *arrivalNs, uint32_t arrivalCapacity);

/* Fills stats[0 .. rankCount) with every rank's lateness; rankCapacity >= rankCount. */
ACL_FUNC_VISIBILITY aclError distbarrierGetRankStats(const char *group, distbarrierRankStats *stats,
                                                     uint32_t rankCapacity);

/* Starts the running per-rank statistics of the group afresh (for every rank). */
ACL_FUNC_VISIBILITY aclError distbarrierResetStats(const char *group);

/* 0 turns recording off for all groups (no per-barrier cost beyond one clock read); 1 on. */
ACL_FUNC_VISIBILITY aclError distbarrierSetStatsEnabled(int enabled);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_DISTBARRIER_H_ */
