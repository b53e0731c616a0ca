// A program that uses atomap as an outside project would: only installed headers, built three
// ways by run.sh (find_package, pkg-config with a plain g++ line, add_subdirectory).
// readme_example.inc is the README's "In code" block, extracted by run.sh and wrapped in a
// function, so the README's example compiles as written; main() runs a small real swap.
#include <cstdio>
#include <string>
#include <string_view>

void Serve(std::string_view listen);  // the README's example serves the value it read

// absl::Status ReadmeExample(): the README's code with its own #include lines first (so they
// alone must declare what it uses); compiled and linked, never called.
#include "readme_example.inc"

#include "atomap/atomap.h"

void Serve(std::string_view listen) {
  std::printf("serving on %.*s\n", static_cast<int>(listen.size()), listen.data());
}

namespace {

absl::Status Run(const std::string& path) {
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<atomap::Atom> config = domain->atom("config");
  if (!config.ok()) return config.status();
  absl::StatusOr<atomap::Snapshot> v =
      config->swap([](atomap::Transaction& tx) { return tx.set("listen", "0.0.0.0:8080"); });
  if (!v.ok()) return v.status();
  absl::StatusOr<atomap::Snapshot> snap = config->load();
  if (!snap.ok()) return snap.status();
  std::optional<std::string_view> listen = snap->map().get("listen");
  if (!listen || *listen != "0.0.0.0:8080") return absl::InternalError("listen was not stored");
  Serve(*listen);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer FILE\n");
    return 2;
  }
  std::printf("atomap %s\n", ATOMAP_VERSION_STRING);
  const absl::Status status = Run(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "consumer: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
