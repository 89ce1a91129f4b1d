// The extension entry points of distbarrier/distbarrier.h: arrival statistics and version.
#include <cstring>
#include <string>

#include "api/guard.h"
#include "common/error.h"
#include "distbarrier/distbarrier.h"
#include "op/caller_rank.h"

using distbarrier::Fail;
namespace comm = distbarrier::comm;

namespace {

// The caller's member of `group`, or the error already recorded in *error.
bool FindMember(const char* api, const char* group, comm::Member* member, aclError* error) {
  if (group == nullptr) {
    *error = Fail(ACL_ERROR_INVALID_PARAM, "{}: group is null", api);
    return false;
  }
  auto resolved = distbarrier::op::ResolveCallerRank(std::string(group, strnlen(group, comm::kGroupNameCapacity)));
  if (auto* why = std::get_if<std::string>(&resolved)) {
    *error = Fail(ACL_ERROR_INVALID_PARAM, "{}: {}", api, *why);
    return false;
  }
  *member = std::get<comm::Member>(std::move(resolved));
  return true;
}

}  // namespace

extern "C" {

#define DISTBARRIER_STRINGIFY2(x) #x
#define DISTBARRIER_STRINGIFY(x) DISTBARRIER_STRINGIFY2(x)
const char* distbarrierVersion(void) {
  return DISTBARRIER_STRINGIFY(DISTBARRIER_VERSION_MAJOR) "." DISTBARRIER_STRINGIFY(
      DISTBARRIER_VERSION_MINOR) "." DISTBARRIER_STRINGIFY(DISTBARRIER_VERSION_PATCH);
}

aclError distbarrierGetLastBarrier(const char* group, distbarrierBarrierInfo* info, int64_t* arrivalNs,
                                   uint32_t arrivalCapacity) try {
  constexpr const char* kApi = "distbarrierGetLastBarrier";
  if (info == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: info is null", kApi);
  comm::Member member;
  aclError error = ACL_SUCCESS;
  if (!FindMember(kApi, group, &member, &error)) return error;
  const uint32_t ranks = static_cast<uint32_t>(member.group->Size());
  if (arrivalNs != nullptr && arrivalCapacity < ranks) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: arrivalCapacity {} is less than the group's {} ranks", kApi,
                arrivalCapacity, ranks);
  }
  *info = distbarrierBarrierInfo{0, ranks, -1, 0};
  auto record = member.group->Stats().WaitFor(member.group->LastPassed(member.rank));
  if (arrivalNs != nullptr) {
    for (uint32_t rank = 0; rank < ranks; ++rank) arrivalNs[rank] = record ? record->relative_ns[rank] : -1;
  }
  if (record) *info = distbarrierBarrierInfo{record->seq, ranks, record->last_rank, record->spread_ns};
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError distbarrierGetRankStats(const char* group, distbarrierRankStats* stats, uint32_t rankCapacity) try {
  constexpr const char* kApi = "distbarrierGetRankStats";
  if (stats == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: stats is null", kApi);
  comm::Member member;
  aclError error = ACL_SUCCESS;
  if (!FindMember(kApi, group, &member, &error)) return error;
  const std::vector<comm::RankLateness> lateness = member.group->Stats().Lateness();
  if (rankCapacity < lateness.size()) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: rankCapacity {} is less than the group's {} ranks", kApi, rankCapacity,
                lateness.size());
  }
  for (size_t rank = 0; rank < lateness.size(); ++rank) {
    const comm::RankLateness& one = lateness[rank];
    stats[rank] = distbarrierRankStats{
        one.barriers, one.times_last,
        one.barriers == 0 ? 0.0 : static_cast<double>(one.total_ns) / static_cast<double>(one.barriers),
        one.max_ns};
  }
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError distbarrierResetStats(const char* group) try {
  comm::Member member;
  aclError error = ACL_SUCCESS;
  if (!FindMember("distbarrierResetStats", group, &member, &error)) return error;
  member.group->Stats().Reset();
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError distbarrierSetStatsEnabled(int enabled) try {
  if (enabled != 0 && enabled != 1) {
    return Fail(ACL_ERROR_INVALID_PARAM, "distbarrierSetStatsEnabled: enabled is {}, expected 0 or 1", enabled);
  }
  comm::SetStatsEnabled(enabled == 1);
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

}  // extern "C"
