// The parking slots the barrier uses: only a release that covers a parked barrier takes it,
// a rank parked twice (two streams) parks in the overflow list, and exactly one of the rank
// and the releaser takes each parking, in the slot and in the overflow list alike.
#include "comm/parked_ranks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace distbarrier::comm {
namespace {

std::vector<void*> TakeReleased(ParkedRanks& parked, uint64_t released_seq) {
  std::vector<void*> taken;
  parked.TakeReleased(released_seq, taken);
  return taken;
}

TEST(ParkedRanksTest, OnlyAReleaseThatCoversTheParkedBarrierTakesIt) {
  ParkedRanks parked(2);
  int waiter = 0;
  parked.Park(1, 5, &waiter);
  EXPECT_TRUE(TakeReleased(parked, 4).empty());
  EXPECT_EQ(TakeReleased(parked, 5), std::vector<void*>{&waiter});
  EXPECT_FALSE(parked.Take(1, 5));  // taken once only
  EXPECT_TRUE(TakeReleased(parked, 5).empty());
  EXPECT_EQ(parked.ParkedCount(), 0);
}

TEST(ParkedRanksTest, AReleaseTakesBarriersAbandonedBeforeIt) {
  ParkedRanks parked(3);
  int in_three = 0;
  int in_seven = 0;
  parked.Park(0, 3, &in_three);  // a barrier the others gave up on
  parked.Park(2, 7, &in_seven);
  EXPECT_EQ(TakeReleased(parked, 7), (std::vector<void*>{&in_three, &in_seven}));
}

TEST(ParkedRanksTest, ASecondParkingOfARankGoesToTheOverflowList) {
  ParkedRanks parked(1);
  int first = 0;
  int second = 0;
  int third = 0;
  parked.Park(0, 1, &first);
  parked.Park(0, 2, &second);
  parked.Park(0, 3, &third);
  EXPECT_EQ(parked.ParkedCount(), 3);
  EXPECT_TRUE(parked.Take(0, 3));  // the rank takes an overflow parking back (a timeout)
  EXPECT_FALSE(parked.Take(0, 3));
  EXPECT_EQ(TakeReleased(parked, 2), (std::vector<void*>{&first, &second}));
  EXPECT_EQ(parked.ParkedCount(), 0);
  parked.Park(0, 4, &first);  // the slot is free again
  EXPECT_EQ(parked.ParkedCount(), 1);
  EXPECT_TRUE(parked.Take(0, 4));
}

// Parks `parkings_per_round` barriers of rank 0 per round while another thread releases each
// round: every parking is taken exactly once, by the rank or by the releaser.
void ExactlyOneTakerPerParking(int parkings_per_round) {
  constexpr uint64_t kRounds = 5000;
  ParkedRanks parked(1);
  int waiter = 0;
  std::atomic<uint64_t> round{0};
  std::atomic<uint64_t> released{0};
  std::atomic<uint64_t> releaser_takes{0};
  uint64_t rank_takes = 0;
  std::thread releaser([&] {
    for (uint64_t r = 1; r <= kRounds; ++r) {
      while (round.load(std::memory_order_acquire) < r) std::this_thread::yield();
      std::vector<void*> taken;
      parked.TakeReleased(r * static_cast<uint64_t>(parkings_per_round), taken);
      releaser_takes.fetch_add(taken.size(), std::memory_order_relaxed);
      released.store(r, std::memory_order_release);
    }
  });
  for (uint64_t r = 1; r <= kRounds; ++r) {
    const uint64_t first_seq = (r - 1) * static_cast<uint64_t>(parkings_per_round) + 1;
    for (int i = 0; i < parkings_per_round; ++i) parked.Park(0, first_seq + static_cast<uint64_t>(i), &waiter);
    round.store(r, std::memory_order_release);
    for (int i = 0; i < parkings_per_round; ++i) {
      if (parked.Take(0, first_seq + static_cast<uint64_t>(i))) ++rank_takes;
    }
    while (released.load(std::memory_order_acquire) < r) std::this_thread::yield();
  }
  releaser.join();
  EXPECT_EQ(rank_takes + releaser_takes.load(), kRounds * static_cast<uint64_t>(parkings_per_round));
  EXPECT_EQ(parked.ParkedCount(), 0);
}

TEST(ParkedRanksTest, ExactlyOneOfTheRankAndTheReleaserTakesEachSlotParking) { ExactlyOneTakerPerParking(1); }

TEST(ParkedRanksTest, ExactlyOneOfTheRankAndTheReleaserTakesEachOverflowParking) { ExactlyOneTakerPerParking(3); }

}  // namespace
}  // namespace distbarrier::comm
