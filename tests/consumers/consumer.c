/* A C program that uses atomap's C API as an outside project would: only atomap/c.h, linked with
 * libatomap_c alone, built by run.sh with a plain `cc` line and pkg-config atomap-c, and with
 * CMake's atomap::atomap_c (find_package/). readme_example_c.inc is the README's "From C" block,
 * extracted by run.sh and wrapped in a function, so the README's example compiles as written;
 * main() runs a small real swap. */
#include <stdio.h>
#include <string.h>

/* int ReadmeExampleC(void): the README's code with its own #include lines first (so they alone
 * must declare what it uses); compiled and linked, never called. */
#include "readme_example_c.inc"

#include "atomap/c.h"

static atomap_code store_listen(atomap_txn* tx, void* user) {
  (void)user;
  return atomap_txn_set(tx, "listen", 6, "0.0.0.0:8080", 12);
}

static int run(const char* path) {
  atomap_domain* domain;
  atomap_atom* config;
  atomap_snapshot* snap;
  const void* listen;
  size_t listen_len;
  int found = 0, ok;
  if (atomap_open(path, NULL, &domain) != ATOMAP_OK) return 0;
  if (atomap_open_atom(domain, "config", 6, &config) != ATOMAP_OK ||
      atomap_swap(config, store_listen, NULL, NULL) != ATOMAP_OK ||
      atomap_load(config, &snap) != ATOMAP_OK) {
    atomap_close(domain);
    return 0;
  }
  ok = atomap_snapshot_get(snap, "listen", 6, &listen, &listen_len, &found) == ATOMAP_OK && found &&
       listen_len == 12 && memcmp(listen, "0.0.0.0:8080", 12) == 0;
  if (ok) printf("serving on %.*s\n", (int)listen_len, (const char*)listen);
  if (!ok) fprintf(stderr, "consumer: listen was not stored\n");
  ok = atomap_snapshot_release(snap) == ATOMAP_OK && ok;
  return atomap_close(domain) == ATOMAP_OK && ok;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: consumer FILE\n");
    return 2;
  }
  printf("atomap %s (C API %d)\n", atomap_version(), atomap_c_api_version());
  if (atomap_c_api_version() != ATOMAP_C_API_VERSION) {
    fprintf(stderr, "consumer: built against C API %d, running with %d\n", ATOMAP_C_API_VERSION,
            atomap_c_api_version());
    return 1;
  }
  if (!run(argv[1])) {
    fprintf(stderr, "consumer: %s\n", atomap_last_error());
    return 1;
  }
  return 0;
}
