#include "recovery/durability.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "atomap/domain.h"
#include "domain/domain_impl.h"

namespace atomap::internal {
namespace {

std::mutex& ObserverMutex() {
  static std::mutex mu;
  return mu;
}
std::function<void(const std::string&)>& Observer() {
  static std::function<void(const std::string&)> observer;
  return observer;
}

}  // namespace

absl::Status SyncDomain(DomainImpl& domain) {
  if (domain.kind() != DomainKind::kFile || domain.read_only()) return absl::OkStatus();
  if (fdatasync(domain.arena().fd()) != 0) {
    return absl::InternalError(domain.path() + ": fdatasync: " + std::strerror(errno));
  }
  std::lock_guard<std::mutex> lock(ObserverMutex());
  if (Observer()) Observer()(domain.path());
  return absl::OkStatus();
}

void SetSyncObserverForTesting(std::function<void(const std::string& path)> observer) {
  std::lock_guard<std::mutex> lock(ObserverMutex());
  Observer() = std::move(observer);
}

}  // namespace atomap::internal
