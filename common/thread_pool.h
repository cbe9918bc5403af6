// A fixed-size FIFO thread pool with a bounded queue (thread-safe). Keeps gRPC reactors
// non-blocking: model and codec work runs here, never on a gRPC callback thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace splitrans {

class ThreadPool {
 public:
  // max_queue: tasks that may wait for a thread (0: unbounded). name prefixes log lines.
  ThreadPool(int threads, size_t max_queue = 0, std::string name = "pool");
  ~ThreadPool();  // runs the tasks already queued, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues task unless max_queue tasks are already waiting or the pool is being destroyed;
  // false (task dropped) then.
  // A task that throws is logged and does not stop its thread; callers that must answer a
  // request catch their own exceptions.
  bool TryPost(std::function<void()> task);
  size_t QueueDepth() const;  // waiting tasks
  int Busy() const;           // threads running a task
  size_t max_queue() const { return max_queue_; }

 private:
  void Run();

  const size_t max_queue_;
  const std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  int busy_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace splitrans
