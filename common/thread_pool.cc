#include "common/thread_pool.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace splitrans {

ThreadPool::ThreadPool(int threads, size_t max_queue, std::string name)
    : max_queue_(max_queue), name_(std::move(name)) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool ThreadPool::TryPost(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || (max_queue_ > 0 && tasks_.size() >= max_queue_)) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

size_t ThreadPool::QueueDepth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

int ThreadPool::Busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

void ThreadPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stop_ and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++busy_;
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("{}: task failed with an exception: {}", name_, e.what());
    } catch (...) {
      spdlog::error("{}: task failed with an unknown exception", name_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    --busy_;
  }
}

}  // namespace splitrans
