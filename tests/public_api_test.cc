// The public API the tools live on: find_atom and atom_names, Options::error_if_exists,
// Domain::created and was_clean, compare_and_set's lost-race status, reset to a list of entries,
// CheckKeyValue. Only installed headers (and the tests' support) are used here.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "atomap/atomap.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using Entries = std::vector<std::pair<std::string_view, std::string_view>>;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Put(Atom& atom, const Entries& entries) {
  REQUIRE(atom.swap([&](Transaction& tx) { return tx.set_many(entries); }).ok());
}

// Every entry of `map`, in key order.
std::vector<std::pair<std::string, std::string>> Contents(const Map& map) {
  std::vector<std::pair<std::string, std::string>> out;
  map.ForEach([&](std::string_view k, std::string_view v) { out.emplace_back(k, v); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("find_atom finds existing atoms and never creates one", "[api]") {
  TempDir dir;
  const std::string path = dir.File("find.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
  REQUIRE(domain.ok());

  absl::StatusOr<Atom> missing = domain->find_atom("nobody");
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(missing.status().message().find(path) != std::string_view::npos);
  CHECK(missing.status().message().find("nobody") != std::string_view::npos);
  CHECK(domain->info().atom_count == 0);  // looking created nothing
  CHECK(domain->atom_names().empty());
  CHECK(absl::IsInvalidArgument(domain->find_atom("").status()));

  absl::StatusOr<Atom> made = domain->atom("config");
  REQUIRE(made.ok());
  Put(*made, {{"k", "v"}});
  absl::StatusOr<Atom> found = domain->find_atom("config");
  REQUIRE(found.ok());
  CHECK(found->name() == "config");
  CHECK(found->load()->map().get("k") == "v");  // the same atom
  CHECK(domain->info().atom_count == 1);

  // Another handle (here: read-only, in a child so as not to share the first one's runtime)
  // sees it too.
  const pid_t child = ForkChild([&] {
    Options options;
    options.read_only = true;
    absl::StatusOr<Domain> reader = Domain::Open(path, options);
    if (!reader.ok()) return 1;
    absl::StatusOr<Atom> atom = reader->find_atom("config");
    if (!atom.ok() || atom->load()->map().get("k") != "v") return 2;
    return absl::IsNotFound(reader->find_atom("nobody").status()) ? 0 : 3;
  });
  CHECK(WaitChild(child) == 0);
}

TEST_CASE("atom_names lists every atom, sorted by bytes", "[api]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("names", SmallOptions(16, 64, DomainKind::kInProcess, std::uint64_t{64} << 20));
  REQUIRE(domain.ok());
  const std::vector<std::string> created = {"zeta", "alpha", std::string("b\xff\x00z", 4), "Beta",
                                            "alpha2"};
  for (const std::string& name : created) REQUIRE(domain->atom(name).ok());
  REQUIRE(domain->atom("alpha").ok());  // again: still one atom
  std::vector<std::string> expected = created;
  std::sort(expected.begin(), expected.end());
  CHECK(domain->atom_names() == expected);
}

TEST_CASE("error_if_exists creates or fails, and never touches an existing file", "[api]") {
  TempDir dir;
  const std::string path = dir.File("once.atomap");
  Options options = SmallOptions();
  options.error_if_exists = true;
  {
    absl::StatusOr<Domain> first = Domain::Open(path, options);
    REQUIRE(first.ok());
    CHECK(first->created());
    REQUIRE(first->atom("a").ok());
  }
  const std::string before = ReadFile(path);
  absl::StatusOr<Domain> again = Domain::Open(path, options);
  CHECK(absl::IsAlreadyExists(again.status()));
  CHECK(again.status().message().find(path) != std::string_view::npos);
  CHECK(ReadFile(path) == before);  // not even marked dirty

  // Something that is not a domain is not opened (nor validated) either.
  const std::string other = dir.File("not-a-domain");
  {
    std::ofstream(other) << "hello";
  }
  CHECK(absl::IsAlreadyExists(Domain::Open(other, options).status()));
  CHECK(absl::IsAlreadyExists(Domain::CreateUnpublished(other, options).status()));
  CHECK(ReadFile(other) == "hello");

  // Whatever is there, it is AlreadyExists, and never opened: a directory, a symbolic link
  // (dangling or not), a FIFO (an open of which could block or wake a reader), a file this
  // process may not write.
  const std::string directory = dir.File("a-directory");
  REQUIRE(mkdir(directory.c_str(), 0700) == 0);
  const std::string link = dir.File("a-link");
  REQUIRE(symlink(path.c_str(), link.c_str()) == 0);
  const std::string dangling = dir.File("a-dangling-link");
  REQUIRE(symlink(dir.File("nowhere").c_str(), dangling.c_str()) == 0);
  const std::string fifo = dir.File("a-fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const std::string read_only_file = dir.File("read-only");
  {
    std::ofstream(read_only_file) << "r";
  }
  REQUIRE(chmod(read_only_file.c_str(), 0400) == 0);
  for (const std::string& existing : {directory, link, dangling, fifo, read_only_file}) {
    INFO(existing);
    CHECK(absl::IsAlreadyExists(Domain::Open(existing, options).status()));
  }
  CHECK(ReadFile(path) == before);

  // It asks to create: with an open that may not create, it is a mistake.
  Options read_only = options;
  read_only.read_only = true;
  CHECK(absl::IsInvalidArgument(Domain::Open(dir.File("new.atomap"), read_only).status()));
  Options no_create = options;
  no_create.create_if_missing = false;
  CHECK(absl::IsInvalidArgument(Domain::Open(dir.File("new.atomap"), no_create).status()));

  // Without it, the same path opens.
  absl::StatusOr<Domain> plain = Domain::Open(path, SmallOptions());
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->created());
}

TEST_CASE("error_if_exists: of processes racing to create one path, exactly one succeeds",
          "[api]") {
  TempDir dir;
  const std::string path = dir.File("race.atomap");
  constexpr int kProcesses = 6;
  Gate start;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    children.push_back(ForkChild([&] {
      start.Wait();
      Options options = SmallOptions();
      options.error_if_exists = true;
      absl::StatusOr<Domain> domain = Domain::Open(path, options);
      if (domain.ok()) return domain->created() ? 0 : 2;
      return absl::IsAlreadyExists(domain.status()) ? 1 : 3;
    }));
  }
  start.Open();
  int winners = 0;
  int losers = 0;
  for (const pid_t child : children) {
    const int code = WaitChild(child);
    CHECK((code == 0 || code == 1));
    winners += code == 0;
    losers += code == 1;
  }
  CHECK(winners == 1);
  CHECK(losers == kProcesses - 1);
}

TEST_CASE("created and was_clean say how this handle found the domain", "[api]") {
  TempDir dir;
  const std::string path = dir.File("state.atomap");
  {
    absl::StatusOr<Domain> creator = Domain::Open(path, SmallOptions());
    REQUIRE(creator.ok());
    CHECK(creator->created());
    CHECK_FALSE(creator->was_clean());
    // A second handle while the first is open: not created, and not clean (it is in use).
    const pid_t child = ForkChild([&] {
      absl::StatusOr<Domain> second = Domain::Open(path, SmallOptions());
      if (!second.ok()) return 1;
      return !second->created() && !second->was_clean() ? 0 : 2;
    });
    CHECK(WaitChild(child) == 0);
  }
  {
    absl::StatusOr<Domain> reopened = Domain::Open(path, SmallOptions());
    REQUIRE(reopened.ok());
    CHECK_FALSE(reopened->created());
    CHECK(reopened->was_clean());  // every handle closed normally
  }
  // A process that dies without closing leaves it dirty.
  const pid_t crashed = ForkChild([&] {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
    _exit(domain.ok() ? 0 : 1);  // before the handle's destructor
    return 1;
  });
  REQUIRE(WaitChild(crashed) == 0);
  absl::StatusOr<Domain> after_crash = Domain::Open(path, SmallOptions());
  REQUIRE(after_crash.ok());
  CHECK_FALSE(after_crash->created());
  CHECK_FALSE(after_crash->was_clean());

  absl::StatusOr<Domain> in_process =
      Domain::Open("fresh", SmallOptions(16, 64, DomainKind::kInProcess, std::uint64_t{64} << 20));
  REQUIRE(in_process.ok());
  CHECK(in_process->created());
}

TEST_CASE("handles that close at the same moment leave the domain clean", "[api]") {
  // Each closer tries to turn its attach lock exclusive; two at once used to fail on each
  // other's shared lock, and neither marked the domain clean.
  TempDir dir;
  const std::string path = dir.File("state.atomap");
  REQUIRE(Domain::Open(path, SmallOptions()).ok());
  constexpr int kRounds = 1000;
  constexpr int kClosers = 4;
  int dirty_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    Gate close_together;
    ReportPipe opened;
    std::vector<pid_t> children;
    for (int i = 0; i < kClosers; ++i) {
      children.push_back(ForkChild([&] {
        {
          absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
          if (!domain.ok()) return 1;
          opened.Send(char{1});
          close_together.Wait();
        }  // every child closes its handle here, at once
        return 0;
      }));
    }
    opened.CloseWriteEnd();
    for (int i = 0; i < kClosers; ++i) REQUIRE(opened.Receive<char>().has_value());
    close_together.Open();
    for (pid_t child : children) REQUIRE(WaitChild(child) == 0);
    absl::StatusOr<Domain> after = Domain::Open(path, SmallOptions());
    REQUIRE(after.ok());
    if (!after->was_clean()) ++dirty_rounds;
  }
  CHECK(dirty_rounds == 0);
}

TEST_CASE("compare_and_set that lost to another process is a distinguishable Aborted", "[api]") {
  TempDir dir;
  const std::string path = dir.File("cas.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
  REQUIRE(domain.ok());
  absl::StatusOr<Atom> atom = domain->atom("counter");
  REQUIRE(atom.ok());
  Put(*atom, {{"n", "0"}});

  absl::StatusOr<Snapshot> base = atom->load();
  REQUIRE(base.ok());
  absl::StatusOr<Transaction> tx = atom->begin(*base);
  REQUIRE(tx.ok());
  REQUIRE(tx->set("n", "parent").ok());
  // Another process publishes over the same base meanwhile.
  const pid_t child = ForkChild([&] {
    absl::StatusOr<Domain> other = Domain::Open(path, SmallOptions());
    if (!other.ok()) return 1;
    absl::StatusOr<Atom> same = other->atom("counter");
    if (!same.ok()) return 2;
    return same->swap([](Transaction& t) { return t.set("n", "child"); }).ok() ? 0 : 3;
  });
  REQUIRE(WaitChild(child) == 0);

  absl::StatusOr<Snapshot> lost = atom->compare_and_set(*std::move(tx));
  REQUIRE_FALSE(lost.ok());
  CHECK(absl::IsAborted(lost.status()));
  CHECK(IsLostRace(lost.status()));
  CHECK(lost.status().message().find("counter") != std::string_view::npos);
  CHECK(atom->load()->map().get("n") == "child");  // the loser published nothing

  // Begun again from the newer version, it wins and returns what it published.
  absl::StatusOr<Snapshot> newer = atom->load();
  REQUIRE(newer.ok());
  absl::StatusOr<Transaction> retry = atom->begin(*newer);
  REQUIRE(retry.ok());
  REQUIRE(retry->set("n", "parent").ok());
  absl::StatusOr<Snapshot> won = atom->compare_and_set(*std::move(retry));
  REQUIRE(won.ok());
  CHECK(won->version() == newer->version() + 1);
  CHECK(won->map().get("n") == "parent");

  // No other status is a lost race: not a plain Aborted, not OK, not a write refused.
  CHECK_FALSE(IsLostRace(absl::AbortedError("something else")));
  CHECK_FALSE(IsLostRace(absl::OkStatus()));
  Options read_only;
  read_only.read_only = true;
  absl::StatusOr<Domain> reader = Domain::Open(path, read_only);
  REQUIRE(reader.ok());
  absl::StatusOr<Atom> read_atom = reader->find_atom("counter");
  REQUIRE(read_atom.ok());
  absl::StatusOr<Snapshot> read_base = read_atom->load();
  REQUIRE(read_base.ok());
  CHECK_FALSE(IsLostRace(read_atom->begin(*read_base).status()));
}

TEST_CASE("reset to a list of entries makes the atom hold exactly them", "[api]") {
  absl::StatusOr<Domain> domain = Domain::Open(
      "reset-entries", SmallOptions(16, 64, DomainKind::kInProcess, std::uint64_t{64} << 20));
  REQUIRE(domain.ok());
  absl::StatusOr<Atom> atom = domain->atom("a");
  REQUIRE(atom.ok());
  Put(*atom, {{"keep", "old"}, {"drop", "x"}, {"same", "s"}});
  REQUIRE(atom->version().value() == 1);

  const std::string blob(100, 'n');
  const Entries entries = {{"same", "s"}, {"new", blob}, {"keep", "new"}};
  absl::StatusOr<Snapshot> reset = atom->reset(entries);
  REQUIRE(reset.ok());
  CHECK(reset->version() == 2);  // one version
  CHECK(Contents(reset->map()) == std::vector<std::pair<std::string, std::string>>{
                                      {"keep", "new"}, {"new", blob}, {"same", "s"}});

  // Of equal keys the last wins; keys and values are bytes (NUL included).
  const std::string nul_key("k\0ey", 4);
  const std::string nul_value("v\0\xff", 3);
  absl::StatusOr<Snapshot> binary =
      atom->reset(Entries{{"dup", "first"}, {nul_key, nul_value}, {"dup", "last"}});
  REQUIRE(binary.ok());
  CHECK(binary->version() == 3);
  CHECK(Contents(binary->map()) ==
        std::vector<std::pair<std::string, std::string>>{{"dup", "last"}, {nul_key, nul_value}});
  reset = atom->reset(entries);  // back to version 2's contents, as version 4
  REQUIRE(reset.ok());

  // A key over the limit: InvalidArgument, nothing published.
  const std::string long_key(kMaxKeyBytes + 1, 'k');
  absl::StatusOr<Snapshot> refused = atom->reset(Entries{{"ok", "1"}, {long_key, "v"}});
  CHECK(absl::IsInvalidArgument(refused.status()));
  CHECK(atom->version().value() == 4);

  absl::StatusOr<Snapshot> emptied = atom->reset(Entries{});
  REQUIRE(emptied.ok());
  CHECK(emptied->map().size() == 0);
  CHECK(emptied->version() == 5);
}

TEST_CASE("CheckKeyValue answers what set() would", "[api]") {
  const std::string longest_key(kMaxKeyBytes, 'k');
  const std::string too_long_key(kMaxKeyBytes + 1, 'k');
  CHECK(CheckKeyValue(longest_key, "").ok());
  CHECK(CheckKeyValue("", "").ok());
  const absl::Status key = CheckKeyValue(too_long_key, "v");
  CHECK(absl::IsInvalidArgument(key));
  CHECK(key.message().find(std::to_string(kMaxKeyBytes)) != std::string_view::npos);
  const std::string too_long_value(kMaxValueBytes + 1, 'v');
  CHECK(absl::IsInvalidArgument(CheckKeyValue("k", too_long_value)));

  absl::StatusOr<Domain> domain =
      Domain::Open("limits", SmallOptions(16, 64, DomainKind::kInProcess, std::uint64_t{64} << 20));
  REQUIRE(domain.ok());
  absl::StatusOr<Atom> atom = domain->atom("a");
  REQUIRE(atom.ok());
  absl::StatusOr<Snapshot> refused =
      atom->swap([&](Transaction& tx) { return tx.set(too_long_key, "v"); });
  CHECK(refused.status() == key);  // the same answer, word for word
}

TEST_CASE("version.h names the file format this library writes", "[api]") {
  CHECK(ATOMAP_FORMAT_VERSION >= 2);
  CHECK(std::string(ATOMAP_VERSION_STRING) == std::to_string(ATOMAP_VERSION_MAJOR) + "." +
                                                  std::to_string(ATOMAP_VERSION_MINOR) + "." +
                                                  std::to_string(ATOMAP_VERSION_PATCH));
}

}  // namespace
}  // namespace atomap
