// ThreadBox: where a snapshot (or transaction) that Python drops on the wrong thread waits for
// the thread that took it.
//
// Why: a C++ Snapshot pins the participant of the thread that loaded it, and its pin state is
// not atomic (src/atom/pin_site.h), so it must be destroyed on that thread. Python's garbage
// collector drops objects on whatever thread happens to run it.
//
// Invariants
//  (B1) Each thread that wraps a pinned object gets one box, made at its first wrap (after the
//       library's first claim on that thread, so that its thread-exit destructor runs before the
//       library's one releases the thread's participants). A thread_local holder keeps it.
//  (B2) A pinned object is destroyed by its owner thread, or, once that thread has exited, by any
//       thread while it holds the box's mutex: never by two threads at once.
//  (B3) Release() on the owner thread destroys at once (and drains the queue); on another thread
//       it locks the box: exited -> destroy there, under the mutex; else push onto the queue.
//  (B4) The owner drains its queue at the start of every binding call that pins (Drain()) and at
//       thread exit, where it sets `exited` under the mutex, with the queue emptied.
//  (B5) Nothing here touches a Python object: it runs at thread exit, without the GIL.
//  (B6) A pinned object holds what it needs (the domain) itself, so destroying it later is safe.
//  (B7) In a child of fork() a pinned object is destroyed at once by whichever thread releases
//       it (Pinned::Inherited): it pins nothing there. The forking thread's box is set aside in
//       the child (never locked again: fork() may have copied its mutex locked), and the thread
//       gets a new one for what it loads in the child.
//
// Thread safety: as (B2)-(B4) say; every member is safe from any thread.
#ifndef ATOMAP_PYTHON_SRC_THREAD_BOX_H_
#define ATOMAP_PYTHON_SRC_THREAD_BOX_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace atomap::python {

// What only its owner thread may destroy (B2): a wrapped Snapshot or Transaction.
class Pinned {
 public:
  virtual ~Pinned() = default;
  // True in a child of fork(): the handle is inert there (domain.h), destroying it touches no
  // pin, so any thread may, without the box (whose mutex fork() may have copied locked).
  virtual bool Inherited() const = 0;
};

class ThreadBox {
 public:
  // The calling thread's box, made at the first call (B1).
  static std::shared_ptr<ThreadBox> ForThisThread();
  // Destroys what other threads left in the calling thread's box (B4). Cheap when empty.
  static void Drain();
  // Destroys `pinned` now or hands it to its owner (B3).
  static void Release(const std::shared_ptr<ThreadBox>& owner, std::unique_ptr<Pinned> pinned);
  // True if the calling thread owns `box`.
  static bool IsThisThread(const ThreadBox* box);

  // Thread exit (B4): called by the thread_local holder's destructor.
  void Exit();

 private:
  void DrainOwn();

  std::mutex mu_;
  bool exited_ = false;  // guarded by mu_
  std::vector<std::unique_ptr<Pinned>> queue_;  // guarded by mu_
  std::atomic<bool> queued_{false};  // a hint: queue_ may be non-empty (set under mu_)
};

}  // namespace atomap::python

#endif  // ATOMAP_PYTHON_SRC_THREAD_BOX_H_
