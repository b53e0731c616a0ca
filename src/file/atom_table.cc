#include "file/atom_table.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"

namespace atomap::internal {

AtomTable::AtomTable(std::uint8_t* region, std::uint32_t capacity, KeyHasher hasher, bool writable,
                     std::string path)
    : region_(region),
      capacity_(capacity),
      hasher_(hasher),
      writable_(writable),
      path_(std::move(path)) {}

absl::Status AtomTable::CheckName(std::string_view name) const {
  if (name.empty() || name.size() > kMaxAtomNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: an atom name has 1 to %d bytes; this one has %d", path_,
                        kMaxAtomNameBytes, name.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::uint32_t> AtomTable::RecordOf(std::uint32_t word) const {
  if (word - 1 >= capacity_) {
    return absl::DataLossError(
        absl::StrFormat("%s: atom index word %d names record %d, past the capacity %d", path_, word,
                        word - 1, capacity_));
  }
  return word - 1;
}

absl::Status AtomTable::IndexFull() const {
  return absl::DataLossError(
      absl::StrFormat("%s: the atom index has no empty word (damaged: at most half of its %d "
                      "words can be used)",
                      path_, IndexWords(capacity_)));
}

std::string_view AtomTable::Name(std::uint32_t atom) const {
  const AtomRecord& record = Record(atom);
  const std::size_t length = record.name_length;
  return std::string_view(record.name, length <= kMaxAtomNameBytes ? length : 0);
}

absl::StatusOr<std::uint32_t> AtomTable::Find(std::string_view name) const {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  const std::uint64_t words = IndexWords(capacity_);
  const std::uint64_t start = hasher_(name) % words;
  for (std::uint64_t k = 0; k < words; ++k) {
    const std::uint32_t word = IndexWord((start + k) % words).LoadAcquire();  // (1)
    if (word == 0) {
      return absl::NotFoundError(absl::StrFormat("%s: no atom named '%s'", path_, name));
    }
    absl::StatusOr<std::uint32_t> atom = RecordOf(word);
    if (!atom.ok()) return atom.status();
    if (Name(*atom) == name) return *atom;
  }
  return IndexFull();
}

absl::StatusOr<std::uint32_t> AtomTable::ReserveRecord(std::string_view name) {
  std::uint32_t record = 0;
  bool have_spare = false;
  {
    std::lock_guard<std::mutex> lock(spare_mu_);
    if (!spare_records_.empty()) {
      record = spare_records_.back();
      spare_records_.pop_back();
      have_spare = true;
    }
  }
  if (!have_spare) {
    std::uint32_t next = Head().next_record.LoadRelaxed();
    do {
      if (next >= capacity_) {
        return absl::ResourceExhaustedError(
            absl::StrFormat("%s: the atom table is full (capacity %d atoms)", path_, capacity_));
      }
    } while (!Head().next_record.CasWeakRelaxed(next, next + 1));  // (2)
    record = next;
  }
  AtomRecord& r = Record(record);  // private until published (T2)
  std::memset(&r, 0, sizeof r);
  r.name_length = static_cast<std::uint8_t>(name.size());
  std::memcpy(r.name, name.data(), name.size());
  return record;
}

absl::StatusOr<std::uint32_t> AtomTable::FindOrCreate(std::string_view name) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  if (!writable_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: opened read-only; cannot create atom '%s'", path_, name));
  }
  const std::uint64_t words = IndexWords(capacity_);
  const std::uint64_t start = hasher_(name) % words;
  std::uint32_t reserved = 0;
  bool have_reserved = false;
  auto keep_spare = [&] {
    if (!have_reserved) return;
    std::lock_guard<std::mutex> lock(spare_mu_);
    spare_records_.push_back(reserved);
  };
  for (std::uint64_t k = 0; k < words; ++k) {
    SharedU32& index_word = IndexWord((start + k) % words);
    std::uint32_t word = index_word.LoadAcquire();  // (1)
    if (word == 0) {
      if (!have_reserved) {
        absl::StatusOr<std::uint32_t> record = ReserveRecord(name);
        if (!record.ok()) return record.status();
        reserved = *record;
        have_reserved = true;
      }
      if (index_word.CasReleaseAcquire(word, reserved + 1)) {  // (3)
        return reserved;
      }
      // Lost: `word` is now the winner's, with its name visible through (3)'s acquire half.
    }
    absl::StatusOr<std::uint32_t> atom = RecordOf(word);
    if (!atom.ok()) {
      keep_spare();
      return atom.status();
    }
    if (Name(*atom) == name) {
      keep_spare();
      return *atom;
    }
  }
  keep_spare();
  return IndexFull();
}

std::uint32_t AtomTable::Count() const {
  std::uint32_t count = 0;
  ForEach([&count](std::uint32_t, std::string_view) { ++count; });
  return count;
}

void AtomTable::ForEach(
    absl::FunctionRef<void(std::uint32_t atom, std::string_view name)> fn) const {
  std::vector<std::uint32_t> atoms;
  for (std::uint64_t i = 0; i < IndexWords(capacity_); ++i) {
    const std::uint32_t word = IndexWord(i).LoadAcquire();  // (1)
    if (word != 0 && word - 1 < capacity_) atoms.push_back(word - 1);
  }
  std::sort(atoms.begin(), atoms.end());
  for (const std::uint32_t atom : atoms) fn(atom, Name(atom));
}

}  // namespace atomap::internal
