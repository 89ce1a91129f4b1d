// The status server: one thread per process holding a communicator, listening on the abstract
// Unix socket of comm/diagnosis/status_protocol.h, which answers distbarrier-status from the
// flight recorders' view of the groups (atomics in the barrier windows, never a lock a rank
// waiting in a barrier could hold), so it answers while every rank is stuck.
#pragma once

#include <sys/types.h>

namespace distbarrier::comm::diagnosis {

// Starts this process's server unless it runs already: once per process, and again in a
// forked child (whose parent's thread is not there). DISTBARRIER_STATUS=0 turns it off.
// Callers serialize (the recorder registry's lock).
void EnsureStatusServer();

// Whether a client running as `client` may read the state of a job running as `owner`: only
// the same user.
bool ClientAllowed(uid_t client, uid_t owner);

}  // namespace distbarrier::comm::diagnosis
