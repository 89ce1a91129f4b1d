// The floors a barrier is read against, measured once per run: the cache-line ping-pong between
// two ranks and the context switch between two processes on one CPU.
#pragma once

namespace distbarrier::perf {

// ns per round trip of a cache line between two threads (or two forked processes), each
// pinned to its own CPU where it may; NAN if the shared mapping fails.
double PingPong(bool processes, int iterations);

// The context-switch cost: two processes pinned to one CPU hand a byte back and forth through
// two pipes; a round trip is two switches (plus a write and a read each). ns per switch.
double ContextSwitchNs(int round_trips);

}  // namespace distbarrier::perf
