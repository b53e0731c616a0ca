#include "domain/domain_impl.h"

#include "alloc/allocator_state.h"
#include "domain/slot_recovery.h"
#include "file/initial_prefix.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "arena/file_locks.h"
#include "file/change_notification.h"
#include "file/companion_file.h"
#include "file/domain_file.h"

namespace atomap::internal {
namespace {

std::mutex& HookMutex() {
  static std::mutex mu;
  return mu;
}
DomainTakeoverHook& GlobalHook() {
  static DomainTakeoverHook hook;
  return hook;
}

DomainTakeoverHook CurrentHook() {
  std::lock_guard<std::mutex> lock(HookMutex());
  return GlobalHook();
}

constexpr std::uint32_t kClean = static_cast<std::uint32_t>(DomainState::kClean);
constexpr std::uint32_t kDirty = static_cast<std::uint32_t>(DomainState::kDirty);

}  // namespace

void SetSlotTakeoverHook(DomainTakeoverHook hook) {
  std::lock_guard<std::mutex> lock(HookMutex());
  GlobalHook() = std::move(hook);
}

std::unique_ptr<DomainImpl> DomainImpl::WithHandleOptions(const Options& options) {
  std::unique_ptr<DomainImpl> domain(new DomainImpl());
  domain->kind_ = options.kind;
  domain->durability_ = options.durability;
  domain->verify_reads_ = options.verify_reads;
  domain->combine_writes_ = options.combine_writes;
  domain->read_only_ = options.read_only && options.kind != DomainKind::kInProcess;
  domain->lock_timeout_ = options.lock_timeout;
  return domain;
}

absl::StatusOr<std::unique_ptr<DomainImpl>> DomainImpl::Open(std::string_view path,
                                                             const Options& options) {
  if (options.unregistered_reads && !options.read_only) {
    return absl::InvalidArgumentError(
        "option unregistered_reads is for readers only (set read_only as well)");
  }
  std::unique_ptr<DomainImpl> domain = WithHandleOptions(options);
  if (options.kind == DomainKind::kInProcess) {
    const HeaderParams params = ParamsFrom(options);
    if (absl::Status s = CheckParams(params); !s.ok()) return s;
    const Header header = MakeHeader(params);
    absl::StatusOr<std::unique_ptr<Arena>> arena =
        Arena::Anonymous(header.max_size, header.size.LoadRelaxed());
    if (!arena.ok()) return arena.status();
    domain->arena_ = *std::move(arena);
    const std::unique_ptr<InitialPrefix> prefix = MakeInitialPrefix(header);
    std::memcpy(domain->arena_->base(), prefix->bytes, sizeof prefix->bytes);
    domain->path_ = std::string(path);
    domain->created_ = true;
    domain->found_alone_ = true;
  } else {
    absl::StatusOr<std::string> file_path = DomainFilePath(path, options.kind);
    if (!file_path.ok()) return file_path.status();
    absl::StatusOr<DomainFile> file = OpenOrCreateDomainFile(*file_path, options);
    if (!file.ok()) return file.status();
    const std::string companions_of = CompanionBasePath(*file_path, options.follow_symlinks);
    if (absl::Status s = domain->MapFile(*file, *std::move(file_path)); !s.ok()) return s;
    absl::StatusOr<Companions> companions =
        domain->read_only_ ? OpenReaderCompanions(companions_of, domain->arena_->fd(), file->header,
                                                  options.unregistered_reads)
                           : OpenWriterCompanions(companions_of, domain->arena_->fd(), file->header,
                                                  options.lock_timeout);
    if (!companions.ok()) return companions.status();
    domain->AdoptCompanions(*companions);
  }
  if (absl::Status s = domain->Attach(); !s.ok()) return s;
  return domain;
}

absl::StatusOr<std::unique_ptr<DomainImpl>> DomainImpl::CreateUnpublished(std::string_view path,
                                                                          const Options& options) {
  if (options.kind == DomainKind::kInProcess || options.read_only) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: only a writable file or shared-memory domain can be created unpublished", path));
  }
  std::unique_ptr<DomainImpl> domain = WithHandleOptions(options);
  absl::StatusOr<std::string> file_path = DomainFilePath(path, options.kind);
  if (!file_path.ok()) return file_path.status();
  absl::StatusOr<DomainFile> file =
      CreateUnpublishedDomainFile(*file_path, options, domain->temp_name_);
  if (!file.ok()) return file.status();
  domain->unpublished_ = true;  // from here on, the destructor removes a temporary name
  if (absl::Status s = domain->MapFile(*file, *std::move(file_path)); !s.ok()) return s;
  absl::StatusOr<Companions> companions =
      BuildUnpublishedCompanions(domain->path_, domain->arena_->fd(), file->header);
  if (!companions.ok()) return companions.status();
  domain->AdoptCompanions(*companions);
  if (absl::Status s = domain->Attach(); !s.ok()) return s;
  return domain;
}

absl::Status DomainImpl::Publish() {
  if (inherited()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: this handle was opened by the parent of this process (before fork())", path_));
  }
  if (!unpublished_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: the domain is already published", path_));
  }
  // The companions go first: this handle holds its locks on them already, and an opener that
  // races the publication must find them (companion_file.h). Nothing at the path yet means
  // whatever is at their names is a leftover.
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrFormat("%s: already exists (the new domain was not published)", path_));
  }
  Companions companions;
  companions.lock_fd = lock_fd_;
  companions.registry_fd = registry_fd_;
  companions.lock_temp_name = std::move(lock_temp_name_);
  companions.registry_temp_name = std::move(registry_temp_name_);
  lock_temp_name_.clear();
  registry_temp_name_.clear();
  if (absl::Status s = PublishCompanions(companions, path_); !s.ok()) return s;
  if (absl::Status s = PublishDomainFile(arena_->fd(), temp_name_, path_); !s.ok()) return s;
  unpublished_ = false;
  return absl::OkStatus();
}

void DomainImpl::AdoptCompanions(Companions& companions) {
  lock_fd_ = std::exchange(companions.lock_fd, -1);
  registry_fd_ = std::exchange(companions.registry_fd, -1);
  unregistered_reader_ = companions.unregistered;
  lock_temp_name_ = std::move(companions.lock_temp_name);
  registry_temp_name_ = std::move(companions.registry_temp_name);
  if (!read_only_) arena_->SetLockFile(lock_fd_, LockFilePath(path_), lock_timeout_);
}

absl::Status DomainImpl::MapFile(const DomainFile& file, std::string file_path) {
  absl::StatusOr<std::unique_ptr<Arena>> arena =
      Arena::MapFile(file.fd, file_path, file.header.max_size, !read_only_);
  if (!arena.ok()) return arena.status();  // MapFile closed the fd
  arena_ = *std::move(arena);
  path_ = std::move(file_path);
  created_ = file.created;
  return absl::OkStatus();
}

absl::Status DomainImpl::Attach() {
  header_ = arena_->At<Header>(0);
  // Before any pin of this handle (PF1): registers this process on its first attach.
  // Read once (validated on open; immutable): this handle's pins and scans agree on the mode even
  // if a stray write changed the shared word later.
  fence_mode_ = static_cast<PinFenceMode>(header_->pin_fence);
  pin_fence_.emplace(fence_mode_);
  arena_->BindSizeWord(&header_->size);
  if (absl::Status s = arena_->Refresh(); !s.ok()) return s;
  if (arena_->file_backed()) {
    if (absl::Status s = AttachFile(); !s.ok()) return s;
  }
  if (absl::Status s = InitTables(); !s.ok()) return s;
  if (!read_only_) {
    was_clean_ = header_->state.LoadAcquire() == kClean;  // (1)
    header_->state.StoreRelease(kDirty);  // (1)
    marked_dirty_ = true;
  }
  return absl::OkStatus();
}

absl::Status DomainImpl::AttachFile() {
  // Readers take no attach lock (they cannot open PATH.lock): their presence is their registry
  // slot, which a lone writer's sweep respects. Clean and dirty are among writers only.
  if (read_only_) return absl::OkStatus();
  const int fd = lock_fd_;
  // Exclusive succeeds only if no other writer's handle anywhere holds the attach lock.
  absl::StatusOr<bool> alone = TryLockByte(fd, kAttachedLockByte, LockMode::kExclusive);
  if (!alone.ok()) return alone.status();
  found_alone_ = *alone;
  if (found_alone_) {  // under the exclusive lock: nobody anywhere can be waiting
    const Header& h = *header_;
    AtomTable atoms(arena_->base() + h.atom_table_offset, h.atom_capacity,
                    KeyHasher(static_cast<HashKind>(h.hash_kind), h.hash_seed), true, path_);
    ForgetLegacyWaiters(atoms);
  }
  // Converts an exclusive lock to shared in place; otherwise waits out a closer that holds it
  // exclusive while it marks the domain clean (briefly; bounded by lock_timeout).
  if (absl::Status s =
          LockByteWithin(fd, kAttachedLockByte, LockMode::kShared, absl::Now() + lock_timeout_,
                         LockFilePath(path_), "attach lock");
      !s.ok()) {
    return s;
  }
  attached_ = true;
  return absl::OkStatus();
}

absl::Status DomainImpl::InitTables() {
  const Header& h = *header_;
  std::uint8_t* base = arena_->base();
  hasher_ = KeyHasher(static_cast<HashKind>(h.hash_kind), h.hash_seed);
  slots_.emplace(arena_->At<Slot>(h.slot_table_offset), h.slot_capacity, arena_->file_backed(),
                 &header_->slot_high_water);
  if (!read_only_) slots_->CoverClaimedSlots();  // S4
  atoms_.emplace(base + h.atom_table_offset, h.atom_capacity, hasher_, !read_only_, path_);
  // Recovery always runs; a hook installed by SetSlotTakeoverHook (tests) observes the dead
  // owner's slot first, as it was.
  slots_->set_takeover_hook(
      [this, observer = CurrentHook()](std::uint32_t slot, const SlotHead& dead) {
        if (observer) observer(*this, slot, dead);
        RecoverDeadSlot(*this, slot);
      });
  // The allocator's fixed fields: every block offset followed in recovery is checked against
  // its data_begin (the fuzzer found a zeroed one leading a takeover into the header).
  const AllocatorState& state = *allocator_state();
  if (state.magic.LoadRelaxed() != kAllocatorMagic ||
      state.num_classes != size_classes::kNumClasses || state.data_begin != h.data_begin) {
    return absl::DataLossError(absl::StrCat(
        path_, ": allocator state: magic, num_classes or data_begin (", state.data_begin,
        ") does not match this domain (data_begin ", h.data_begin, ")"));
  }
  if (registry_fd_ >= 0) {
    absl::StatusOr<ReaderRegistry> registry = ReaderRegistry::Open(
        registry_fd_, h.reader_capacity, /*map_slots=*/read_only_, path_ + ".readers");
    if (!registry.ok()) return registry.status();
    readers_.emplace(*std::move(registry));
  }
  if (read_only_) return absl::OkStatus();
  absl::StatusOr<SlotLease> lease = slots_->Claim(lock_fd_, /*owns_fd=*/false);
  if (!lease.ok()) {
    return absl::Status(lease.status().code(), absl::StrCat(path_, ": ", lease.status().message()));
  }
  process_slot_ = *std::move(lease);
  return absl::OkStatus();
}

absl::StatusOr<SlotLease> DomainImpl::ClaimSlot() {
  if (inherited()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: this handle was opened by the parent of this process (before fork()); open the "
        "domain again in the child",
        path_));
  }
  if (read_only_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: opened read-only; a read-only handle claims no slot", path_));
  }
  int fd = -1;
  if (arena_->file_backed()) {
    // Opening /proc/self/fd/N makes a new file description of the same file (dup would share
    // the description, and OFD locks of one description never conflict with each other). Of
    // PATH.lock: slot locks live there, never on PATH.
    const std::string self = absl::StrCat("/proc/self/fd/", lock_fd_);
    fd = open(self.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      return absl::InternalError(absl::StrFormat("%s: cannot open a participant description: %s",
                                                 path_, std::strerror(errno)));
    }
  }
  absl::StatusOr<SlotLease> lease = slots_->Claim(fd, /*owns_fd=*/fd >= 0);
  if (!lease.ok()) {
    return absl::Status(lease.status().code(), absl::StrCat(path_, ": ", lease.status().message()));
  }
  return lease;
}

void DomainImpl::Detach() {
  process_slot_.Release();
  if (!attached_) return;
  const int fd = lock_fd_;
  if (marked_dirty_) {  // a handle that failed to open never marks clean what it did not dirty
    absl::StatusOr<bool> last = TryLockByte(fd, kAttachedLockByte, LockMode::kExclusive);
    if (last.ok() && !*last) {
      // Another handle holds it: it may be closing at this moment too, its own upgrade failing
      // on our shared lock as ours fails on its. Let go and try once more: of closers at once,
      // the one that tries last finds nobody (whoever holds it then is attached, or marking).
      (void)UnlockByte(fd, kAttachedLockByte);
      last = TryLockByte(fd, kAttachedLockByte, LockMode::kExclusive);
    }
    // Clean only if no participant died since the last sweep: neither one taken over (counted)
    // nor one whose slot still says owned (nobody else is attached, so its owner is dead).
    if (last.ok() && *last && header_->deaths_since_sweep.LoadRelaxed() == 0 &&
        slots_->InUse().empty()) {
      header_->state.StoreRelease(kClean);  // (2)
    }
  }
  (void)UnlockByte(fd, kAttachedLockByte);
  attached_ = false;
}

DomainImpl::~DomainImpl() {
  if (inherited()) {
    // The parent still owns the slot and shares the attach lock's description: leave both.
    // Closing our copies of the descriptors is safe: an OFD lock lasts until the last
    // descriptor of its description closes, and the parent keeps its own (as for the arena's).
    process_slot_.Abandon();
    CloseCompanions();
    return;
  }
  if (arena_ != nullptr && slots_.has_value()) Detach();
  if (unpublished_) DiscardUnpublishedName(temp_name_);  // an O_TMPFILE file goes with its fd
  CloseCompanions();
}

void DomainImpl::CloseCompanions() {
  readers_.reset();  // it reads through registry_fd_
  Companions companions;
  companions.lock_fd = std::exchange(lock_fd_, -1);
  companions.registry_fd = std::exchange(registry_fd_, -1);
  companions.lock_temp_name = std::move(lock_temp_name_);
  companions.registry_temp_name = std::move(registry_temp_name_);
  companions.Close();
}

DomainInfo DomainImpl::Info() const {
  DomainInfo info;
  info.size = arena_->SharedSize();
  info.max_size = header_->max_size;
  info.slot_capacity = header_->slot_capacity;
  for (const SlotTable::InUseSlot& slot : slots_->InUse()) {
    info.slots_in_use.push_back({slot.index, slot.pid});
  }
  info.atom_count = atoms_->Count();
  info.atom_capacity = header_->atom_capacity;
  info.clean = header_->state.LoadAcquire() == kClean;
  return info;
}

}  // namespace atomap::internal
