// The arrival statistics alone (comm/barrier_stats.h), from arrival times written into a
// window: per-barrier records and per-rank counters, for barriers of all ranks and of subsets.
#include "comm/barrier_stats.h"

#include <gtest/gtest.h>

#include <vector>

#include "comm/barrier_window.h"

namespace distbarrier::comm {
namespace {

// Arrivals of `ranks` at `seq` at the given times, then the record of it.
void RecordBarrier(BarrierWindow& window, BarrierStats& stats, uint64_t seq, const std::vector<int>& ranks,
                   const std::vector<int64_t>& arrival_ns) {
  for (size_t i = 0; i < ranks.size(); ++i) window.Arrive(ranks[i], seq, arrival_ns[i], ranks);
  stats.RecordReleased(seq, ranks, window);
}

TEST(BarrierStatsTest, CountersAddUpBarriersOfAllRanksAndOfSubsets) {
  BarrierWindow window(3);
  BarrierStats stats(3);
  RecordBarrier(window, stats, 1, {0, 1, 2}, {100, 130, 110});  // rank 1 last, 30 late
  RecordBarrier(window, stats, 2, {0, 2}, {200, 250});          // elastic: rank 1 left out
  RecordBarrier(window, stats, 3, {0, 1, 2}, {300, 300, 320});  // rank 2 last, 20 late

  const std::vector<RankLateness> lateness = stats.Lateness();
  ASSERT_EQ(lateness.size(), 3u);
  EXPECT_EQ(lateness[0].barriers, 3u);
  EXPECT_EQ(lateness[1].barriers, 2u);
  EXPECT_EQ(lateness[2].barriers, 3u);
  EXPECT_EQ(lateness[0].times_last, 0u);
  EXPECT_EQ(lateness[1].times_last, 1u);
  EXPECT_EQ(lateness[2].times_last, 2u);
  EXPECT_EQ(lateness[0].total_ns, 0);
  EXPECT_EQ(lateness[1].total_ns, 30);
  EXPECT_EQ(lateness[2].total_ns, 10 + 50 + 20);
  EXPECT_EQ(lateness[1].max_ns, 30);
  EXPECT_EQ(lateness[2].max_ns, 50);

  const std::optional<BarrierRecord> subset = stats.WaitFor(2);
  ASSERT_TRUE(subset.has_value());
  EXPECT_EQ(subset->last_rank, 2);
  EXPECT_EQ(subset->spread_ns, 50);
  EXPECT_EQ(subset->relative_ns, (std::vector<int64_t>{0, -1, 50}));  // -1: not waited for
  const std::optional<BarrierRecord> all = stats.WaitFor(3);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->relative_ns, (std::vector<int64_t>{0, 0, 20}));
  EXPECT_EQ(all->first_arrival_ns, 300);
}

TEST(BarrierStatsTest, ArrivalTimesFromTheReleaseRecordTheSameAsTheWindow) {
  BarrierWindow window(3);
  BarrierStats from_window(3);
  BarrierStats from_release(3);
  const std::vector<int> required = {2, 0};
  std::vector<int64_t> arrivals(required.size());
  window.Arrive(2, 1, 40, required, arrivals);
  ASSERT_TRUE(window.Arrive(0, 1, 25, required, arrivals));
  const BarrierSummary a = from_window.RecordReleased(1, required, window);
  const BarrierSummary b = from_release.RecordReleased(1, required, arrivals);
  EXPECT_EQ(a.first_arrival_ns, 25);
  EXPECT_EQ(a.last_arrival_ns, 40);
  EXPECT_EQ(a.last_rank, 2);
  EXPECT_EQ(b.first_arrival_ns, a.first_arrival_ns);
  EXPECT_EQ(b.last_arrival_ns, a.last_arrival_ns);
  EXPECT_EQ(b.last_rank, a.last_rank);
  EXPECT_EQ(from_release.WaitFor(1)->relative_ns, (std::vector<int64_t>{0, -1, 15}));
  EXPECT_EQ(from_release.Lateness()[2].total_ns, from_window.Lateness()[2].total_ns);
}

// Each recent barrier has its own row (the slot, then every rank's relative time): rows of a
// group wider than a line keep their own values, and a row reused by a later barrier no longer
// answers for the earlier one.
TEST(BarrierStatsTest, RecentBarriersOfAWideGroupKeepTheirOwnRows) {
  constexpr int kRanks = 20;
  constexpr uint64_t kBarriers = 6;
  BarrierWindow window(kRanks);
  BarrierStats stats(kRanks);
  std::vector<int> all(kRanks);
  for (int rank = 0; rank < kRanks; ++rank) all[rank] = rank;
  for (uint64_t seq = 1; seq <= kBarriers; ++seq) {
    std::vector<int64_t> arrival_ns(kRanks);
    for (int rank = 0; rank < kRanks; ++rank) arrival_ns[rank] = static_cast<int64_t>(seq * 1000 + rank * seq);
    RecordBarrier(window, stats, seq, all, arrival_ns);
  }
  for (uint64_t seq = 3; seq <= kBarriers; ++seq) {
    const std::optional<BarrierRecord> record = stats.WaitFor(seq);
    ASSERT_TRUE(record.has_value()) << seq;
    EXPECT_EQ(record->last_rank, kRanks - 1);
    for (int rank = 0; rank < kRanks; ++rank) EXPECT_EQ(record->relative_ns[rank], static_cast<int64_t>(rank * seq));
  }
  EXPECT_FALSE(stats.WaitFor(1).has_value());  // its row holds barrier 5 now
  EXPECT_EQ(stats.Lateness()[kRanks - 1].times_last, kBarriers);
  EXPECT_EQ(stats.Lateness()[0].barriers, kBarriers);
}

TEST(BarrierStatsTest, ResetClearsEveryCounter) {
  BarrierWindow window(2);
  BarrierStats stats(2);
  RecordBarrier(window, stats, 1, {0, 1}, {0, 5});
  RecordBarrier(window, stats, 2, {1}, {10});
  stats.Reset();
  for (const RankLateness& rank : stats.Lateness()) {
    EXPECT_EQ(rank.barriers, 0u);
    EXPECT_EQ(rank.times_last, 0u);
    EXPECT_EQ(rank.total_ns, 0);
    EXPECT_EQ(rank.max_ns, 0);
  }
  RecordBarrier(window, stats, 3, {0, 1}, {20, 21});
  EXPECT_EQ(stats.Lateness()[0].barriers, 1u);
  EXPECT_EQ(stats.Lateness()[1].barriers, 1u);
}

}  // namespace
}  // namespace distbarrier::comm
