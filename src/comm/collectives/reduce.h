// Element-wise reduction of HCCL data types, for the collectives that reduce (AllReduce,
// Reduce, ReduceScatter). Sources are combined in rank order, so every rank that reduces the
// same elements gets the same bits; FP16 and BF16 are combined in float and rounded once,
// integers wrap around as the hardware's do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "hccl/hccl_types.h"

namespace distbarrier::comm::collectives {

// Bytes of one element; 0 for a value that names no data type.
size_t ElementBytes(HcclDataType type);
// Whether a CPU can combine elements of `type` (INT128 and the 8-bit floats cannot).
bool Reducible(HcclDataType type);
// A name for messages ("fp16", "int128", ...).
const char* DataTypeName(HcclDataType type);
const char* ReduceOpName(HcclReduceOp op);

// Copies elements [first, first + count) of source `source` to `into`.
using ReadSource = std::function<void(int source, size_t first, size_t count, std::byte* into)>;

// out[i] = op(source 0 [i], source 1 [i], ..., source n-1 [i]) for i in [0, count), reading
// the sources a few kilobytes at a time. `type` must be Reducible and `op` one of the four.
void ReduceSources(HcclDataType type, HcclReduceOp op, int sources, size_t count, const ReadSource& read,
                   std::byte* out);

}  // namespace distbarrier::comm::collectives
