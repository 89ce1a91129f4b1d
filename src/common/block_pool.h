// Blocks of one size, recycled across threads. A barrier launched onto a stream whose worker
// runs it is made on the launching thread and freed on the worker: glibc's per-thread cache
// then fills on the worker and stays empty on the launcher, and every barrier paid a malloc
// and a free under the main arena's lock (about a tenth of a 2-process barrier's time).
//
// Each thread keeps the blocks it freed for its next allocations; past 2 x kBatch it hands a
// batch to a shared list, from which a thread whose own cache is empty takes one. So the lock
// is taken once per kBatch blocks, not per block.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <mutex>
#include <new>
#include <vector>

namespace distbarrier {

template <size_t kBytes>
class BlockPool {
 public:
  static void* Allocate() {
    if (t_local_gone) return ::operator new(kBytes);
    Local& local = ThisThread();
    if (local.blocks.empty()) Shared().TakeBatch(local.blocks);
    if (local.blocks.empty()) return ::operator new(kBytes);
    void* block = local.blocks.back();
    local.blocks.pop_back();
    return block;
  }

  static void Free(void* block) {
    if (t_local_gone) {
      ::operator delete(block);
      return;
    }
    Local& local = ThisThread();
    local.blocks.push_back(block);
    if (local.blocks.size() < 2 * kBatch) return;
    std::vector<void*> batch(local.blocks.end() - kBatch, local.blocks.end());
    local.blocks.resize(local.blocks.size() - kBatch);
    Shared().GiveBatch(std::move(batch));
  }

 private:
  static constexpr size_t kBatch = 32;
  static constexpr size_t kSharedBatches = 64;  // beyond that, batches go back to malloc

  static void FreeAll(std::vector<void*>& blocks) {
    for (void* block : blocks) ::operator delete(block);
    blocks.clear();
  }

  struct Local {
    std::vector<void*> blocks;
    Local() { blocks.reserve(2 * kBatch); }
    ~Local() {
      FreeAll(blocks);
      t_local_gone = true;  // a later thread_local's destructor may still free a block
    }
  };
  static thread_local bool t_local_gone;

  struct SharedBatches {
    std::mutex mutex;
    std::vector<std::vector<void*>> batches;

    void TakeBatch(std::vector<void*>& into) {
      std::vector<void*> batch;
      {
        std::lock_guard lock(mutex);
        if (batches.empty()) return;
        batch = std::move(batches.back());
        batches.pop_back();
      }
      into.insert(into.end(), batch.begin(), batch.end());
    }

    void GiveBatch(std::vector<void*> batch) {
      {
        std::lock_guard lock(mutex);
        if (batches.size() < kSharedBatches) {
          batches.push_back(std::move(batch));
          return;
        }
      }
      FreeAll(batch);
    }
  };

  static Local& ThisThread() {
    thread_local Local local;
    return local;
  }
  // Never destroyed: threads may still free blocks while the process exits. Held across fork(),
  // so that a child never inherits it locked by a thread that does not exist there.
  static SharedBatches& Shared() {
    static SharedBatches* shared = [] {
      auto* made = new SharedBatches;
      pthread_atfork([] { Shared().mutex.lock(); }, [] { Shared().mutex.unlock(); }, [] { Shared().mutex.unlock(); });
      return made;
    }();
    return *shared;
  }
};

template <size_t kBytes>
thread_local bool BlockPool<kBytes>::t_local_gone = false;

}  // namespace distbarrier
