#include "thread_box.h"

#include <pthread.h>

#include <utility>

namespace atomap::python {
namespace {

// (B1): destroyed at thread exit, where it drains the box and marks it exited.
struct BoxHolder {
  std::shared_ptr<ThreadBox> box;
  ~BoxHolder() {
    if (box) box->Exit();
  }
};
thread_local BoxHolder this_thread_box;

// In a child of fork(), the forking thread's box is the parent's: its mutex may have been copied
// locked (another thread was pushing), and what it holds is inert (B7). Leave it untouched for
// good, and give the thread a fresh box at its next wrap.
const bool fork_handler_registered = [] {
  pthread_atfork(nullptr, nullptr, [] {
    if (this_thread_box.box) {
      new std::shared_ptr<ThreadBox>(std::move(this_thread_box.box));  // leaked on purpose
    }
  });
  return true;
}();

}  // namespace

std::shared_ptr<ThreadBox> ThreadBox::ForThisThread() {
  (void)fork_handler_registered;
  if (!this_thread_box.box) this_thread_box.box = std::make_shared<ThreadBox>();
  return this_thread_box.box;
}

bool ThreadBox::IsThisThread(const ThreadBox* box) { return this_thread_box.box.get() == box; }

void ThreadBox::Drain() {
  ThreadBox* mine = this_thread_box.box.get();
  if (mine != nullptr && mine->queued_.load(std::memory_order_acquire)) mine->DrainOwn();
}

void ThreadBox::DrainOwn() {
  std::vector<std::unique_ptr<Pinned>> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(queue_);
    queued_.store(false, std::memory_order_relaxed);
  }
  // Destroyed outside the mutex: only this (live) thread destroys its pins (B2), and a pushing
  // thread must not wait for a domain's destructor.
  taken.clear();
}

void ThreadBox::Release(const std::shared_ptr<ThreadBox>& owner, std::unique_ptr<Pinned> pinned) {
  if (pinned->Inherited()) {  // B7
    pinned.reset();
    return;
  }
  if (IsThisThread(owner.get())) {
    pinned.reset();
    if (owner->queued_.load(std::memory_order_acquire)) owner->DrainOwn();
    return;
  }
  std::lock_guard<std::mutex> lock(owner->mu_);
  if (owner->exited_) {
    pinned.reset();  // under the mutex: one destroyer at a time for an exited thread (B2)
    return;
  }
  owner->queue_.push_back(std::move(pinned));
  owner->queued_.store(true, std::memory_order_release);
}

void ThreadBox::Exit() {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
  queued_.store(false, std::memory_order_relaxed);
  exited_ = true;
}

}  // namespace atomap::python
