// What the launch path reuses instead of looking up or allocating again: the per-thread
// last hit of a handle table (FindCached) and the blocks of BlockPool. A cached answer must be
// the answer Find would give: a removed handle is not found, and a table made where another
// one was is not confused with it. A pooled block freed on one thread serves an allocation on
// another.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "common/block_pool.h"
#include "common/handle_table.h"

namespace distbarrier {
namespace {

TEST(HandleTableCacheTest, AHitIsTheLiveObjectAndARemovedHandleIsNotFound) {
  HandleTable<int> table(HandleKind::kExecutor);
  void* handle = table.Add(std::make_shared<int>(7));
  std::shared_ptr<int> first = table.FindCached(handle);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(table.FindCached(handle), first);  // the cached hit: the same object
  ASSERT_NE(table.Take(handle), nullptr);
  EXPECT_EQ(table.FindCached(handle), nullptr);
  EXPECT_EQ(table.Find(handle), nullptr);
}

TEST(HandleTableCacheTest, TheCacheKeepsNothingAliveThatTheTableLetGo) {
  HandleTable<int> table(HandleKind::kExecutor);
  std::weak_ptr<int> watched;
  {
    auto object = std::make_shared<int>(1);
    watched = object;
    void* handle = table.Add(std::move(object));
    ASSERT_NE(table.FindCached(handle), nullptr);
    ASSERT_NE(table.Take(handle), nullptr);
  }
  EXPECT_TRUE(watched.expired());
}

TEST(HandleTableCacheTest, ATableMadeWhereAnotherWasDoesNotAnswerFromTheOldOnesHit) {
  auto keep_alive = std::make_shared<int>(1);
  void* old_handle = nullptr;
  std::optional<HandleTable<int>> table;
  table.emplace(HandleKind::kExecutor);
  old_handle = table->Add(keep_alive);
  ASSERT_EQ(table->FindCached(old_handle), keep_alive);
  table.reset();
  table.emplace(HandleKind::kExecutor);  // same address, no removals yet, same first id
  EXPECT_EQ(table->FindCached(old_handle), nullptr);
  void* new_handle = table->Add(std::make_shared<int>(2));
  ASSERT_EQ(new_handle, old_handle);  // ids start afresh in a new table
  EXPECT_EQ(*table->FindCached(new_handle), 2);
}

TEST(HandleTableCacheTest, ARemovalOnAnotherThreadIsSeen) {
  HandleTable<int> table(HandleKind::kExecutor);
  void* handle = table.Add(std::make_shared<int>(3));
  ASSERT_NE(table.FindCached(handle), nullptr);
  std::thread([&] { EXPECT_NE(table.Take(handle), nullptr); }).join();
  EXPECT_EQ(table.FindCached(handle), nullptr);
}

// A size no other test or code uses: the pool's shared list is per size.
using TestPool = BlockPool<4072>;

TEST(BlockPoolTest, BlocksFreedOnOneThreadServeAnotherThreadsAllocations) {
  std::vector<void*> made;
  for (int i = 0; i < 100; ++i) made.push_back(TestPool::Allocate());
  const std::set<void*> freed(made.begin(), made.end());
  ASSERT_EQ(freed.size(), made.size());
  // Another thread frees them all: each time its cache holds 64 it hands a batch of 32 to the
  // shared list (at the 64th and the 96th), and the 36 left go back to malloc as it exits.
  std::thread([&] {
    for (void* block : made) TestPool::Free(block);
  }).join();
  // A third thread, with an empty cache of its own, gets both batches: 64 of those blocks,
  // more than malloc could hand back from the 36 it got.
  std::thread([&] {
    std::set<void*> reused;
    for (int i = 0; i < 64; ++i) reused.insert(TestPool::Allocate());
    EXPECT_EQ(reused.size(), 64u);
    size_t from_pool = 0;
    for (void* block : reused) from_pool += freed.count(block);
    EXPECT_EQ(from_pool, 64u);
    for (void* block : reused) TestPool::Free(block);
  }).join();
}

}  // namespace
}  // namespace distbarrier
