// atomap: the command-line tool. Parses arguments (CLI11), runs one command, and maps its status
// to the exit code and a one-line message on stderr. docs/cli.md describes every command.
#include <cstdio>
#include <functional>
#include <string>

#include "CLI/CLI.hpp"
#include "atomap/version.h"
#include "cli.h"

namespace atomap::cli {
namespace {

// PATH, and the options every domain command shares.
void AddCommonOptions(CLI::App& command, CommonArgs& args, bool with_atom) {
  command.add_option("path", args.path, "the domain file (a /dev/shm name with --shm)")->required();
  if (with_atom) command.add_option("--atom", args.atom, "the atom (default: \"default\")");
  command.add_flag("--json", args.json, "machine-readable output (JSON)");
  command.add_flag("--shm", args.shm, "PATH names a shared-memory domain (/dev/shm/atomap.PATH)");
  command.add_flag("--allow-foreign", args.allow_foreign,
                   "open for writing even a domain that another user owns (docs/cli.md)");
}

// --read-only and --unregistered, for the commands that only read.
void AddReadFlags(CLI::App& command, CommonArgs& args) {
  CLI::Option* read_only =
      command.add_flag("--read-only", args.read_only, "open as a registered reader");
  command
      .add_flag("--unregistered", args.unregistered,
                "read without registering (only for a file nobody writes while it is open, e.g. "
                "on read-only media; Options::unregistered_reads)")
      ->needs(read_only);
}

int Main(int argc, char** argv) {
  CLI::App app("atomap: inspect and change atomap domains (see docs/cli.md)", "atomap");
  app.require_subcommand(1);
  // The library's version and the one file format it reads and writes (docs/format.md's policy).
  app.set_version_flag("--version", std::string("atomap ") + ATOMAP_VERSION_STRING +
                                        " (file format " + std::to_string(ATOMAP_FORMAT_VERSION) +
                                        ")");
  std::function<absl::Status()> run;  // set by the chosen command's callback

  CreateArgs create;
  CLI::App* c = app.add_subcommand("create", "create a new domain");
  AddCommonOptions(*c, create.common, false);
  c->add_option("--max-size", create.max_size, "the most bytes the domain may grow to");
  c->add_option("--slot-capacity", create.slot_capacity,
                "participant slots (processes or threads attached at once; default 1024)")
      ->check(CLI::Range(1, 65536));
  c->add_option("--atom-capacity", create.atom_capacity, "atoms the domain can hold (default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  c->add_option("--reader-capacity", create.reader_capacity,
                "reader slots in PATH.readers (reader threads registered at once; default 1024)")
      ->check(CLI::Range(1, 65536));
  c->add_option("--reader-mode", create.reader_mode,
                "octal mode of PATH.readers (default: rw for every class that may read PATH)");
  c->callback([&] { run = [&] { return RunCreate(create); }; });

  UpgradeArgs upgrade;
  c = app.add_subcommand("upgrade",
                         "convert a file of an older format (2, 3 or 4) to this format in place");
  AddCommonOptions(*c, upgrade.common, false);
  c->add_option("--reader-capacity", upgrade.reader_capacity, "reader slots (default 1024)")
      ->check(CLI::Range(1, 65536));
  c->add_option("--reader-mode", upgrade.reader_mode, "octal mode of PATH.readers");
  c->callback([&] { run = [&] { return RunUpgrade(upgrade); }; });

  KeyValueArgs put, get, del;
  c = app.add_subcommand("put", "set KEY to VALUE");
  AddCommonOptions(*c, put.common, true);
  c->add_option("key", put.key)->required();
  c->add_option("value", put.value)->required();
  c->add_flag("--hex", put.common.hex, "KEY and VALUE are hexadecimal");
  c->callback([&] { run = [&] { return RunPut(put); }; });

  c = app.add_subcommand("get", "print KEY's value (exit 1 if absent)");
  AddCommonOptions(*c, get.common, true);
  c->add_option("key", get.key)->required();
  c->add_flag("--hex", get.common.hex, "KEY and the printed value are hexadecimal");
  AddReadFlags(*c, get.common);
  c->callback([&] { run = [&] { return RunGet(get); }; });

  c = app.add_subcommand("del", "erase KEY (exit 1 if absent)");
  AddCommonOptions(*c, del.common, true);
  c->add_option("key", del.key)->required();
  c->add_flag("--hex", del.common.hex, "KEY is hexadecimal");
  c->callback([&] { run = [&] { return RunDel(del); }; });

  CommonArgs dump;
  c = app.add_subcommand("dump", "write the atom as JSON lines, sorted by key");
  AddCommonOptions(*c, dump, true);
  c->add_flag("--hex", dump.hex, "every key and value as key_hex / value_hex");
  AddReadFlags(*c, dump);
  c->callback([&] { run = [&] { return RunDump(dump); }; });

  LoadArgs load;
  c = app.add_subcommand("load", "read JSON lines (dump's format) from stdin; one transaction");
  AddCommonOptions(*c, load.common, true);
  c->add_flag("--replace", load.replace, "erase the atom's other keys (make it equal the input)");
  c->callback([&] { run = [&] { return RunLoad(load); }; });

  StatArgs stat;
  c = app.add_subcommand("stat", "sizes, space, epochs, participants and atoms");
  AddCommonOptions(*c, stat.common, false);
  AddReadFlags(*c, stat.common);
  c->add_flag("--readers", stat.readers,
              "list every participant, writers and readers: pins, lag, retained bytes");
  c->add_flag("--prometheus", stat.prometheus, "the figures in Prometheus text format")
      ->excludes("--json");
  c->callback([&] { run = [&] { return RunStat(stat); }; });

  CheckArgs check;
  c = app.add_subcommand("check", "verify the domain (exit 1 if problems are found)");
  AddCommonOptions(*c, check.common, false);
  c->add_flag("--repair", check.repair, "free leaked blocks (needs the domain to itself)");
  c->add_option("--wait", check.wait_seconds,
                "wait up to SECONDS for the domain to itself (full check; needed by --repair)")
      ->check(CLI::Range(0.0, 86400.0));
  AddReadFlags(*c, check.common);
  c->callback([&] { run = [&] { return RunCheck(check); }; });

  WatchArgs watch;
  c = app.add_subcommand("watch", "print each new version's added, changed and removed keys");
  AddCommonOptions(*c, watch.common, true);
  c->add_option("--count", watch.count, "stop after N versions (default: never)");
  c->add_flag("--hex", watch.common.hex, "keys and values as hexadecimal");
  c->callback([&] { run = [&] { return RunWatch(watch); }; });

  CompactArgs compact;
  c = app.add_subcommand("compact", "copy every atom's current version into a new, packed file");
  AddCommonOptions(*c, compact.common, false);
  c->add_option("new_path", compact.new_path, "the file to create")->required();
  c->callback([&] { run = [&] { return RunCompact(compact); }; });

#ifdef ATOMAP_HAVE_REPLICATION
  ReplicateArgs replicate;
  c = app.add_subcommand("replicate", "carry an atom through NATS JetStream (docs/replication.md)");
  c->add_option("mode", replicate.mode, "publish (this domain's atom) or follow (into it)")
      ->required()
      ->check(CLI::IsMember({"publish", "follow"}));
  AddCommonOptions(*c, replicate.common, true);
  c->add_option("--nats", replicate.nats_url,
                "the NATS server's URL (default nats://127.0.0.1:4222)");
  c->add_option("--stream", replicate.stream, "the JetStream stream (default ATOMAP)");
  c->add_option("--subject-prefix", replicate.subject_prefix,
                "records go to PREFIX.ATOM (default atomap)");
  c->add_option("--full-every", replicate.full_every,
                "publish: a full-state record after this many records (default 1000; 0 never)");
  c->add_option("--retry", replicate.retry_seconds,
                "seconds NATS failures are retried before giving up (default 30)")
      ->check(CLI::Range(0.0, 86400.0 * 365));
  c->add_option("--count", replicate.count, "stop after N records (default: never)");
  c->callback([&] { run = [&] { return RunReplicate(replicate); }; });
#endif

  DemoArgs demo;
  c = app.add_subcommand("demo", "processes swapping on shared counters, with a watcher");
  c->add_option("--path", demo.path, "the demo's file (default: $TMPDIR/atomap-demo.atomap)");
  c->add_option("--processes", demo.processes, "worker processes")->check(CLI::Range(1, 64));
  c->add_option("--ops", demo.ops, "swaps per worker")->check(CLI::Range(1, 100000000));
  c->callback([&] { run = [&] { return RunDemo(demo); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help (0) or the usage error
    return code == 0 ? kExitOk : kExitUsage;
  }
  const absl::Status status = run();
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "atomap: %s\n", std::string(status.message()).c_str());
  }
  return ExitCodeFor(status);
}

}  // namespace
}  // namespace atomap::cli

int main(int argc, char** argv) { return atomap::cli::Main(argc, argv); }
