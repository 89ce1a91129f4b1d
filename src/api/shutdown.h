// Process-wide start and end: aclInit / aclFinalize across all layers.
#pragma once

namespace distbarrier::api {

void MarkInitialized();
// Aborts every stream (waking blocked barriers), then forgets every handle of every layer and
// frees all memory: what aclFinalize promises for whatever the program forgot.
void ReleaseEverything();

}  // namespace distbarrier::api
