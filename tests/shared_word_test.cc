// SharedWord: each accessor does what its name says, on a word of a shared mapping, across
// processes that map it at different addresses.
#include <sys/mman.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/futex.h"
#include "common/shared_word.h"
#include "support/process.h"

namespace atomap::internal {
namespace {

// A page of anonymous shared memory: what a fork child and its parent both see.
struct SharedPage {
  SharedPage() {
    base = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(base != MAP_FAILED);
  }
  ~SharedPage() { munmap(base, kBytes); }
  template <class T>
  T* At(std::size_t offset) const {
    return reinterpret_cast<T*>(static_cast<std::uint8_t*>(base) + offset);
  }
  static constexpr std::size_t kBytes = 4096;
  void* base;
};

TEST_CASE("a SharedWord is its word: the file's bytes are its value", "[shared_word]") {
  SharedPage page;
  *page.At<std::uint64_t>(8) = 0x1122334455667788;
  *page.At<std::uint32_t>(16) = 7;
  const SharedU64& wide = *page.At<SharedU64>(8);
  const SharedU32& narrow = *page.At<SharedU32>(16);
  CHECK(wide.LoadRelaxed() == 0x1122334455667788);
  CHECK(wide.LoadAcquire() == 0x1122334455667788);
  CHECK(narrow.LoadSeqCst() == 7);
  page.At<SharedU64>(8)->StoreRelease(42);
  CHECK(*page.At<std::uint64_t>(8) == 42);
  CHECK(*page.At<std::uint32_t>(16) == 7);  // its neighbour untouched
  page.At<SharedU32>(16)->InitPlain(9);
  CHECK(*page.At<std::uint32_t>(16) == 9);
}

TEST_CASE("CAS succeeds only on the expected value and reports what it saw", "[shared_word]") {
  SharedU64 word{};
  word.StoreRelaxed(5);
  std::uint64_t expected = 4;
  CHECK_FALSE(word.CasSeqCst(expected, 10));
  CHECK(expected == 5);  // updated to the value seen
  CHECK(word.LoadRelaxed() == 5);
  CHECK(word.CasSeqCst(expected, 10));
  CHECK(word.LoadRelaxed() == 10);
  CHECK(word.CasAcqRel(expected = 10, 11));
  CHECK(word.CasRelease(expected = 11, 12));
  CHECK(word.CasReleaseAcquire(expected = 12, 13));
  CHECK_FALSE(word.CasReleaseAcquire(expected = 12, 99));
  CHECK(expected == 13);
  // The weak forms may fail spuriously: a retry loop always gets there.
  expected = word.LoadRelaxed();
  while (!word.CasWeakRelaxed(expected, expected + 1)) {
  }
  expected = word.LoadRelaxed();
  while (!word.CasWeakRelease(expected, expected + 1)) {
  }
  expected = word.LoadRelaxed();
  while (!word.CasWeakSeqCst(expected, expected + 1)) {
  }
  CHECK(word.LoadRelaxed() == 16);
}

TEST_CASE("fetch-add and exchange return the previous value", "[shared_word]") {
  SharedU32 counter{};
  CHECK(counter.FetchAddRelaxed(3) == 0);
  CHECK(counter.FetchAddSeqCst(1) == 3);
  CHECK(counter.LoadRelaxed() == 4);
  counter.StoreRelaxed(0xFFFFFFFF);
  CHECK(counter.FetchAddSeqCst(1) == 0xFFFFFFFF);  // wraps, as the change counter relies on
  CHECK(counter.LoadRelaxed() == 0);
  SharedU64 head{};
  head.StoreRelease(77);
  CHECK(head.ExchangeAcquire(0) == 77);
  CHECK(head.LoadRelaxed() == 0);
}

TEST_CASE("processes share a word's RMWs, and a notify wakes a waiter in another process",
          "[shared_word]") {
  SharedPage page;
  SharedU64& total = *page.At<SharedU64>(0);
  SharedU32& futex = *page.At<SharedU32>(64);
  constexpr int kAdds = 20000;
  const pid_t adder = ForkChild([&] {
    for (int i = 0; i < kAdds; ++i) total.FetchAddRelaxed(1);
    return 0;
  });
  for (int i = 0; i < kAdds; ++i) total.FetchAddRelaxed(1);
  REQUIRE(WaitChild(adder) == 0);
  CHECK(total.LoadAcquire() == 2 * kAdds);  // no increment lost

  // The child sleeps on value 0 (one sleep of 20 s) until the parent changes it and wakes it: a
  // shared futex, keyed by the page, though nothing was posted to the child's own address.
  SharedU32& ready = *page.At<SharedU32>(128);
  const pid_t waiter = ForkChild([&] {
    const absl::Time start = absl::Now();
    ready.StoreRelease(1);
    WaitWhileEqual(futex, 0, absl::Seconds(20));
    const bool woken_early = absl::Now() - start < absl::Seconds(10);
    return futex.LoadAcquire() == 1 && woken_early ? 0 : 1;
  });
  while (ready.LoadAcquire() == 0) {
  }
  absl::SleepFor(absl::Milliseconds(100));  // most likely asleep by now; if not, it never sleeps
  futex.StoreRelease(1);
  WakeAll(futex);
  CHECK(WaitChild(waiter) == 0);
}

}  // namespace
}  // namespace atomap::internal
