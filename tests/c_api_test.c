/* The C API (include/atomap/c.h) as a C program sees it: compiled as C99 with -pedantic -Werror
 * and linked with libatomap_c alone. Each test_* function checks one part against a domain file
 * in a fresh directory; a failed CHECK prints its line and atomap_last_error() and the program
 * exits 1 at the end. The multi-process part forks a child that opens the domain itself and
 * publishes; the parent synchronises on the file's state (wait_for_change), never on a sleep. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomap/c.h"

static int failures = 0;

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              atomap_last_error());                                                            \
      ++failures;                                                                              \
    }                                                                                          \
  } while (0)

/* Fails the check unless `call` returns `code`. */
#define CHECK_CODE(call, code)                                                                     \
  do {                                                                                             \
    atomap_code got_ = (call);                                                                     \
    if (got_ != (code)) {                                                                          \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n", __FILE__, __LINE__, \
              #call, atomap_code_name(got_), atomap_code_name(code), atomap_last_error());         \
      ++failures;                                                                                  \
    }                                                                                              \
  } while (0)

#define CHECK_OK(call) CHECK_CODE(call, ATOMAP_OK)

static char dir[256];
static char path[320];

static int contains(const char* text, const char* part) { return strstr(text, part) != NULL; }

/* The value of `key` in `snap` equals `expected` (NULL: absent). */
static int has_value(const atomap_snapshot* snap, const char* key, const char* expected) {
  const void* value = NULL;
  size_t len = 0;
  int found = -1;
  if (atomap_snapshot_get(snap, key, strlen(key), &value, &len, &found) != ATOMAP_OK) return 0;
  if (expected == NULL) return found == 0 && value == NULL && len == 0;
  return found == 1 && len == strlen(expected) && memcmp(value, expected, len) == 0;
}

static uint64_t version_of(const atomap_atom* atom) {
  uint64_t v = UINT64_MAX;
  CHECK_OK(atomap_atom_version(atom, &v));
  return v;
}

/* ---- swap functions ------------------------------------------------------------------------ */

static atomap_code set_abc(atomap_txn* tx, void* user) {
  atomap_code c;
  int* runs = (int*)user;
  ++*runs;
  if ((c = atomap_txn_set(tx, "a", 1, "1", 1)) != ATOMAP_OK) return c;
  if ((c = atomap_txn_set(tx, "b", 1, "2", 1)) != ATOMAP_OK) return c;
  /* a key and a value holding NUL bytes */
  if ((c = atomap_txn_set(tx, "c\0c", 3, "3\0", 2)) != ATOMAP_OK) return c;
  return atomap_txn_set_tag(tx, 77);
}

static atomap_code erase_b_change_a(atomap_txn* tx, void* user) {
  const void* value;
  size_t len;
  int found = 0, existed = 0;
  atomap_code c;
  (void)user;
  if ((c = atomap_txn_erase(tx, "b", 1, &existed)) != ATOMAP_OK) return c;
  if (!existed) return ATOMAP_INTERNAL;
  if ((c = atomap_txn_set(tx, "a", 1, "10", 2)) != ATOMAP_OK) return c;
  /* the transaction sees its own writes */
  if ((c = atomap_txn_get(tx, "a", 1, &value, &len, &found)) != ATOMAP_OK) return c;
  if (!found || len != 2 || memcmp(value, "10", 2) != 0) return ATOMAP_INTERNAL;
  if ((c = atomap_txn_get(tx, "b", 1, &value, &len, &found)) != ATOMAP_OK) return c;
  if (found) return ATOMAP_INTERNAL;
  if (atomap_txn_size(tx) != 2) return ATOMAP_INTERNAL;
  if (atomap_txn_tag(tx) != 77) return ATOMAP_INTERNAL; /* carried from the base */
  return ATOMAP_OK;
}

/* Edits, then refuses without calling anything that fails. */
static atomap_code set_then_refuse(atomap_txn* tx, void* user) {
  (void)user;
  if (atomap_txn_set(tx, "x", 1, "y", 1) != ATOMAP_OK) return ATOMAP_INTERNAL;
  return ATOMAP_NOT_FOUND;
}

/* Passes on the failure of a set whose key is one byte over the limit (64 KiB). */
static atomap_code set_too_long_key(atomap_txn* tx, void* user) {
  static char key[(64 << 10) + 1];
  (void)user;
  memset(key, 'k', sizeof key);
  if (atomap_txn_set(tx, "before", 6, "it", 2) != ATOMAP_OK) return ATOMAP_INTERNAL;
  return atomap_txn_set(tx, key, sizeof key, "v", 1);
}

static atomap_code set_many(atomap_txn* tx, void* user) {
  atomap_entry entries[3];
  (void)user;
  entries[0].key = "m1", entries[0].key_len = 2, entries[0].value = "v1", entries[0].value_len = 2;
  entries[1].key = "m2", entries[1].key_len = 2, entries[1].value = "v2", entries[1].value_len = 2;
  entries[2].key = "m1", entries[2].key_len = 2, entries[2].value = "v3", entries[2].value_len = 2;
  return atomap_txn_set_many(tx, entries, 3); /* of equal keys the last wins */
}

/* On its first run, has a second handle of the domain publish to the same atom first: the swap
 * loses that race and runs the function again, on the newer version. */
struct retry_job {
  atomap_atom* rival; /* the same atom, through another domain handle */
  int runs;
  atomap_code rival_code;
};

static atomap_code set_rival(atomap_txn* tx, void* user) {
  (void)user;
  return atomap_txn_set(tx, "rival", 5, "first", 5);
}

static atomap_code lose_once(atomap_txn* tx, void* user) {
  struct retry_job* job = (struct retry_job*)user;
  const void* value;
  size_t len;
  int found = 0;
  atomap_code c;
  if (++job->runs == 1) job->rival_code = atomap_swap(job->rival, set_rival, NULL, NULL);
  /* each run sees its own base: the second one the rival's version */
  if ((c = atomap_txn_get(tx, "rival", 5, &value, &len, &found)) != ATOMAP_OK) return c;
  if (found != (job->runs > 1)) return ATOMAP_INTERNAL;
  return atomap_txn_set(tx, "retried", 7, "yes", 3);
}

static atomap_code free_borrowed(atomap_txn* tx, void* user) {
  *(atomap_code*)user = atomap_txn_free(tx);
  return ATOMAP_OK;
}

static atomap_code set_from_child(atomap_txn* tx, void* user) {
  (void)user;
  return atomap_txn_set(tx, "from_child", 10, "hello", 5);
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_versions_and_codes(void) {
  CHECK(atomap_c_api_version() == ATOMAP_C_API_VERSION);
  CHECK(strcmp(atomap_version(), ATOMAP_EXPECTED_VERSION) == 0);
  CHECK(strcmp(atomap_code_name(ATOMAP_OK), "OK") == 0);
  CHECK(strcmp(atomap_code_name(ATOMAP_LOST_RACE), "LOST_RACE") == 0);
  CHECK(strcmp(atomap_code_name(ATOMAP_DATA_LOSS), "DATA_LOSS") == 0);
  CHECK(strcmp(atomap_code_name((atomap_code)55), "UNKNOWN_CODE") == 0);
}

static void test_options(void) {
  atomap_options o;
  atomap_domain* d = NULL;
  memset(&o, 0xff, sizeof o);
  atomap_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.create_if_missing == 1 && o.error_if_exists == 0 && o.read_only == 0);
  CHECK(o.kind == ATOMAP_KIND_FILE && o.durability == ATOMAP_DURABILITY_PROCESS_CRASH);
  CHECK(o.permissions == 0600 && o.lock_timeout_ms == 10000);
  CHECK(o.max_size == (uint64_t)64 << 30);
  /* A struct_size this library does not know is refused, naming the field, before anything. */
  o.struct_size = 0;
  CHECK_CODE(atomap_open(path, &o, &d), ATOMAP_INVALID_ARGUMENT);
  CHECK(contains(atomap_last_error(), "atomap_options.struct_size is 0"));
  o.struct_size = sizeof o + 8;
  CHECK_CODE(atomap_open(path, &o, &d), ATOMAP_INVALID_ARGUMENT);
  CHECK(contains(atomap_last_error(), "struct_size"));
  atomap_options_init(&o);
  o.kind = 7;
  CHECK_CODE(atomap_open(path, &o, &d), ATOMAP_INVALID_ARGUMENT);
  CHECK(contains(atomap_last_error(), "kind is 7"));
  CHECK(d == NULL);
  CHECK(access(path, F_OK) != 0); /* nothing was created */
}

static void test_open_errors(void) {
  atomap_options o;
  atomap_domain* d = NULL;
  char missing[400];
  snprintf(missing, sizeof missing, "%s/no/such/dir/x.atomap", dir);
  CHECK(atomap_open(missing, NULL, &d) != ATOMAP_OK);
  CHECK(contains(atomap_last_error(), "no/such/dir"));
  atomap_options_init(&o);
  o.create_if_missing = 0;
  CHECK_CODE(atomap_open(path, &o, &d), ATOMAP_NOT_FOUND);
  CHECK(contains(atomap_last_error(), path));
  CHECK_CODE(atomap_open(NULL, NULL, &d), ATOMAP_INVALID_ARGUMENT);
  CHECK(contains(atomap_last_error(), "path is NULL"));
  CHECK_CODE(atomap_open(path, NULL, NULL), ATOMAP_INVALID_ARGUMENT);
  CHECK(d == NULL);
}

/* Creates the domain and writes with swap; `d` stays open for the later tests. */
static void test_create_and_swap(atomap_domain** d) {
  atomap_options o;
  atomap_domain* again = NULL;
  atomap_atom *config = NULL, *same = NULL, *found = NULL;
  atomap_snapshot* snap = NULL;
  const char* name;
  size_t name_len = 0;
  int runs = 0;
  CHECK_OK(atomap_open(path, NULL, d));
  CHECK(atomap_domain_created(*d) == 1);
  CHECK(atomap_domain_read_only(*d) == 0);
  CHECK(strcmp(atomap_domain_path(*d), path) == 0);
  /* error_if_exists now refuses */
  atomap_options_init(&o);
  o.error_if_exists = 1;
  CHECK_CODE(atomap_open(path, &o, &again), ATOMAP_ALREADY_EXISTS);
  CHECK(again == NULL);

  CHECK_CODE(atomap_find_atom(*d, "config", 6, &found), ATOMAP_NOT_FOUND);
  CHECK(contains(atomap_last_error(), "config"));
  CHECK_OK(atomap_open_atom(*d, "config", 6, &config));
  CHECK_OK(atomap_open_atom(*d, "config", 6, &same));
  CHECK_OK(atomap_find_atom(*d, "config", 6, &found));
  CHECK(config == same && config == found); /* one handle per name */
  name = atomap_atom_name(config, &name_len);
  CHECK(name_len == 6 && memcmp(name, "config", 6) == 0);
  CHECK_CODE(atomap_open_atom(*d, "", 0, &found), ATOMAP_INVALID_ARGUMENT);
  CHECK(version_of(config) == 0);

  CHECK_OK(atomap_swap(config, set_abc, &runs, &snap));
  CHECK(runs == 1);
  CHECK(atomap_snapshot_version(snap) == 1 && atomap_snapshot_size(snap) == 3);
  CHECK(atomap_snapshot_tag(snap) == 77);
  CHECK_OK(atomap_snapshot_release(snap));
  CHECK_OK(atomap_swap(config, erase_b_change_a, NULL, NULL));
  CHECK(version_of(config) == 2);

  /* A function's non-OK return publishes nothing and is what swap returns. */
  CHECK_CODE(atomap_swap(config, set_then_refuse, NULL, NULL), ATOMAP_NOT_FOUND);
  CHECK(contains(atomap_last_error(), "swap function returned ATOMAP_NOT_FOUND"));
  CHECK(version_of(config) == 2);
  /* A failing call inside the function: its message reaches swap's caller. */
  CHECK_CODE(atomap_swap(config, set_too_long_key, NULL, NULL), ATOMAP_INVALID_ARGUMENT);
  CHECK(contains(atomap_last_error(), "key of 65537 bytes is longer than the maximum"));
  CHECK(version_of(config) == 2);
  CHECK_OK(atomap_load(config, &snap));
  CHECK(has_value(snap, "x", NULL) && has_value(snap, "before", NULL));
  CHECK_OK(atomap_snapshot_release(snap));
  {
    atomap_code freed = ATOMAP_OK;
    CHECK_OK(atomap_swap(config, free_borrowed, &freed, NULL));
    CHECK(freed == ATOMAP_FAILED_PRECONDITION); /* not the caller's to free */
  }
  CHECK(version_of(config) == 3);
  CHECK_CODE(atomap_swap(config, NULL, NULL, NULL), ATOMAP_INVALID_ARGUMENT);
}

static void test_swap_retries(void) {
  atomap_domain *mine = NULL, *theirs = NULL;
  atomap_atom* atom = NULL;
  atomap_snapshot* snap = NULL;
  struct retry_job job;
  memset(&job, 0, sizeof job);
  CHECK_OK(atomap_open(path, NULL, &mine));
  CHECK_OK(atomap_open(path, NULL, &theirs));
  CHECK_OK(atomap_open_atom(mine, "retry", 5, &atom));
  CHECK_OK(atomap_open_atom(theirs, "retry", 5, &job.rival));
  CHECK_OK(atomap_swap(atom, lose_once, &job, &snap));
  CHECK(job.rival_code == ATOMAP_OK);
  CHECK(job.runs == 2); /* lost once, then published over the rival's version */
  CHECK(atomap_snapshot_version(snap) == 2);
  CHECK(has_value(snap, "rival", "first") && has_value(snap, "retried", "yes"));
  CHECK_OK(atomap_snapshot_release(snap));
  CHECK_OK(atomap_close(theirs));
  CHECK_OK(atomap_close(mine));
}

static atomap_code count_entry(const void* key, size_t key_len, const void* value, size_t value_len,
                               void* user) {
  size_t* total = (size_t*)user;
  (void)key, (void)value;
  *total += key_len + value_len;
  return ATOMAP_OK;
}

static atomap_code stop_at_first(const void* key, size_t key_len, const void* value,
                                 size_t value_len, void* user) {
  (void)key, (void)key_len, (void)value, (void)value_len;
  ++*(int*)user;
  return ATOMAP_CANCELLED;
}

static void test_reads(atomap_domain* d) {
  atomap_atom* config;
  atomap_snapshot* snap = NULL;
  atomap_iter* iter = NULL;
  const void *key, *value;
  size_t key_len, value_len, total = 0, iterated = 0;
  int has = 0, calls = 0, found = 0;
  CHECK_OK(atomap_open_atom(d, "config", 6, &config));
  CHECK_OK(atomap_load(config, &snap));
  CHECK(atomap_snapshot_version(snap) == 3);
  CHECK(atomap_snapshot_size(snap) == 2); /* a=10, c\0c=3\0 */
  CHECK(has_value(snap, "a", "10") && has_value(snap, "b", NULL));
  CHECK_OK(atomap_snapshot_get(snap, "c\0c", 3, &value, &value_len, &found));
  CHECK(found == 1 && value_len == 2 && memcmp(value, "3\0", 2) == 0);
  CHECK_CODE(atomap_snapshot_get(snap, NULL, 1, &value, &value_len, &found),
             ATOMAP_INVALID_ARGUMENT);

  CHECK_OK(atomap_snapshot_foreach(snap, count_entry, &total));
  CHECK(total == (1 + 2) + (3 + 2));
  CHECK_CODE(atomap_snapshot_foreach(snap, stop_at_first, &calls), ATOMAP_CANCELLED);
  CHECK(calls == 1);

  CHECK_OK(atomap_iter_new(snap, &iter));
  for (;;) {
    CHECK_OK(atomap_iter_next(iter, &key, &key_len, &value, &value_len, &has));
    if (!has) break;
    iterated += key_len + value_len;
  }
  CHECK(iterated == total);
  CHECK(key == NULL && value == NULL);
  /* released only once its iterators are gone */
  CHECK_CODE(atomap_snapshot_release(snap), ATOMAP_FAILED_PRECONDITION);
  CHECK(contains(atomap_last_error(), "iterator"));
  atomap_iter_free(iter);
  /* and the domain closes only once its snapshots are gone */
  CHECK_CODE(atomap_close(d), ATOMAP_FAILED_PRECONDITION);
  CHECK(contains(atomap_last_error(), "still alive"));
  CHECK_OK(atomap_snapshot_release(snap));
  CHECK_OK(atomap_snapshot_release(NULL));

  CHECK_OK(atomap_swap(config, set_many, NULL, &snap));
  CHECK(has_value(snap, "m1", "v3") && has_value(snap, "m2", "v2"));
  CHECK_OK(atomap_snapshot_release(snap));
}

static void test_compare_and_set(atomap_domain* d) {
  atomap_atom *config, *other;
  atomap_snapshot *base = NULL, *won = NULL, *lost = NULL;
  atomap_txn *t1 = NULL, *t2 = NULL, *t3 = NULL;
  uint64_t before;
  CHECK_OK(atomap_open_atom(d, "config", 6, &config));
  CHECK_OK(atomap_open_atom(d, "other", 5, &other));
  CHECK_OK(atomap_load(config, &base));
  before = atomap_snapshot_version(base);
  CHECK_OK(atomap_begin(config, base, &t1));
  CHECK_OK(atomap_begin(config, base, &t2));
  CHECK_CODE(atomap_begin(other, base, &t3), ATOMAP_INVALID_ARGUMENT);
  CHECK(t3 == NULL);
  CHECK_OK(atomap_snapshot_release(base)); /* the transactions do not need it */
  CHECK_OK(atomap_txn_set(t1, "race", 4, "t1", 2));
  CHECK_OK(atomap_txn_set(t2, "race", 4, "t2", 2));
  CHECK_CODE(atomap_compare_and_set(other, t1, NULL), ATOMAP_INVALID_ARGUMENT);
  CHECK_OK(atomap_compare_and_set(config, t1, &won));
  CHECK(atomap_snapshot_version(won) == before + 1 && has_value(won, "race", "t1"));
  CHECK_CODE(atomap_compare_and_set(config, t2, &lost), ATOMAP_LOST_RACE);
  CHECK(lost == NULL);
  CHECK(contains(atomap_last_error(), "config"));
  CHECK(version_of(config) == before + 1);
  /* both are spent now */
  CHECK_CODE(atomap_txn_set(t1, "k", 1, "v", 1), ATOMAP_FAILED_PRECONDITION);
  CHECK_CODE(atomap_compare_and_set(config, t2, NULL), ATOMAP_FAILED_PRECONDITION);
  CHECK_OK(atomap_txn_free(t1));
  CHECK_OK(atomap_txn_free(t2));
  CHECK_OK(atomap_txn_free(NULL));
  CHECK_OK(atomap_snapshot_release(won));
}

struct thread_job {
  atomap_snapshot* snap;
  atomap_txn* tx;
  atomap_atom* atom;
  atomap_code release_code, read_code, txn_code, own_code;
  char release_message[512];
  int read_ok;
};

static void* other_thread(void* arg) {
  struct thread_job* job = (struct thread_job*)arg;
  atomap_snapshot* own = NULL;
  job->read_ok = has_value(job->snap, "a", "10"); /* reading another thread's snapshot is fine */
  job->release_code = atomap_snapshot_release(job->snap);
  snprintf(job->release_message, sizeof job->release_message, "%s", atomap_last_error());
  job->txn_code = atomap_txn_set(job->tx, "k", 1, "v", 1);
  /* this thread's own snapshot is released here */
  job->own_code = atomap_load(job->atom, &own);
  if (job->own_code == ATOMAP_OK) job->own_code = atomap_snapshot_release(own);
  return NULL;
}

static void test_threads(atomap_domain* d) {
  struct thread_job job;
  pthread_t thread;
  atomap_snapshot* base;
  memset(&job, 0, sizeof job);
  CHECK_OK(atomap_open_atom(d, "config", 6, &job.atom));
  CHECK_OK(atomap_load(job.atom, &job.snap));
  CHECK_OK(atomap_load(job.atom, &base));
  CHECK_OK(atomap_begin(job.atom, base, &job.tx));
  CHECK_OK(atomap_snapshot_release(base));
  /* The main thread's message is its own: the other thread's failures leave it alone. */
  CHECK_CODE(atomap_open(NULL, NULL, NULL), ATOMAP_INVALID_ARGUMENT);
  CHECK(pthread_create(&thread, NULL, other_thread, &job) == 0);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(contains(atomap_last_error(), "path is NULL"));
  CHECK(job.read_ok);
  CHECK(job.release_code == ATOMAP_FAILED_PRECONDITION);
  CHECK(contains(job.release_message, "thread"));
  CHECK(job.txn_code == ATOMAP_FAILED_PRECONDITION);
  CHECK(job.own_code == ATOMAP_OK);
  /* refused means not released: still readable here, and released here */
  CHECK(has_value(job.snap, "a", "10"));
  CHECK_OK(atomap_snapshot_release(job.snap));
  CHECK_OK(atomap_txn_free(job.tx));
}

static void test_read_only(void) {
  atomap_options o;
  atomap_domain* ro = NULL;
  atomap_atom *config = NULL, *missing = NULL;
  atomap_snapshot* snap = NULL;
  atomap_check_options co;
  atomap_check_report report;
  int runs = 0;
  atomap_options_init(&o);
  o.read_only = 1;
  CHECK_OK(atomap_open(path, &o, &ro));
  CHECK(atomap_domain_read_only(ro) == 1 && atomap_domain_created(ro) == 0);
  CHECK_CODE(atomap_open_atom(ro, "absent", 6, &missing), ATOMAP_NOT_FOUND);
  CHECK_OK(atomap_open_atom(ro, "config", 6, &config));
  CHECK_OK(atomap_load(config, &snap));
  CHECK(has_value(snap, "race", "t1"));
  CHECK_OK(atomap_snapshot_release(snap));
  CHECK_CODE(atomap_swap(config, set_abc, &runs, NULL), ATOMAP_FAILED_PRECONDITION);
  CHECK(contains(atomap_last_error(), "read-only"));
  CHECK(runs == 0);
  atomap_check_options_init(&co);
  atomap_check_report_init(&report);
  co.repair = 1;
  CHECK_CODE(atomap_check(ro, &co, &report), ATOMAP_FAILED_PRECONDITION);
  CHECK_OK(atomap_close(ro));
}

static void test_wait_and_child(atomap_domain* d) {
  atomap_atom* config;
  atomap_snapshot* next = NULL;
  uint64_t seen;
  pid_t child;
  int status = 0;
  CHECK_OK(atomap_open_atom(d, "config", 6, &config));
  seen = version_of(config);
  CHECK_CODE(atomap_wait_for_change(config, seen, 20, &next), ATOMAP_DEADLINE_EXCEEDED);
  CHECK(next == NULL);
  child = fork();
  if (child == 0) {
    /* The child opens the domain itself: inherited handles are inert after fork. */
    atomap_domain* mine = NULL;
    atomap_atom* atom = NULL;
    atomap_snapshot* inherited = NULL;
    int ok = atomap_load(config, &inherited) == ATOMAP_FAILED_PRECONDITION &&
             atomap_open(path, NULL, &mine) == ATOMAP_OK &&
             atomap_open_atom(mine, "config", 6, &atom) == ATOMAP_OK &&
             atomap_swap(atom, set_from_child, NULL, NULL) == ATOMAP_OK &&
             atomap_close(mine) == ATOMAP_OK;
    if (!ok) fprintf(stderr, "child: %s\n", atomap_last_error());
    _exit(ok ? 0 : 1);
  }
  CHECK(child > 0);
  /* Whether the child publishes before or during the wait, the wait returns its version. */
  CHECK_OK(atomap_wait_for_change(config, seen, 60000, &next));
  CHECK(next != NULL && atomap_snapshot_version(next) == seen + 1);
  CHECK(next != NULL && has_value(next, "from_child", "hello"));
  CHECK_OK(atomap_snapshot_release(next));
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_stats_and_check(atomap_domain* d) {
  atomap_stats stats;
  atomap_check_options co;
  atomap_check_report report;
  atomap_stats_init(&stats);
  CHECK(stats.struct_size == sizeof stats);
  CHECK_OK(atomap_stats_get(d, &stats));
  CHECK(stats.participants >= 1 && stats.writers >= 1);
  CHECK(stats.data_bytes > 0 && stats.live_bytes > 0);
  CHECK(stats.size > 0 && stats.max_size >= stats.size);
  CHECK(stats.atom_count == 3 && stats.atom_capacity == 4096); /* config, retry, other */
  CHECK(stats.damaged == 0);
  stats.struct_size = 8;
  CHECK_CODE(atomap_stats_get(d, &stats), ATOMAP_INVALID_ARGUMENT);

  atomap_check_report_init(&report);
  CHECK_OK(atomap_check(d, NULL, &report));
  CHECK(report.ok == 1 && report.problems == 0 && report.leaked_bytes == 0);
  CHECK(report.space_checked == 1 && report.atoms_checked == 3);
  CHECK(report.reachable_bytes > 0);
  atomap_check_options_init(&co);
  co.struct_size = 1;
  CHECK_CODE(atomap_check(d, &co, &report), ATOMAP_INVALID_ARGUMENT);
  report.struct_size = 0;
  CHECK_CODE(atomap_check(d, NULL, &report), ATOMAP_INVALID_ARGUMENT);
  CHECK_OK(atomap_sync(d));
}

/* An in-process domain read with verify_reads: the checked get and walk. */
static void test_in_process_verified(void) {
  atomap_options o;
  atomap_domain* d = NULL;
  atomap_atom* a = NULL;
  atomap_snapshot* snap = NULL;
  size_t total = 0;
  int runs = 0;
  atomap_options_init(&o);
  o.kind = ATOMAP_KIND_IN_PROCESS;
  o.max_size = 64 << 20;
  o.verify_reads = 1;
  CHECK_OK(atomap_open("c-api-test", &o, &d));
  CHECK_OK(atomap_open_atom(d, "n", 1, &a));
  CHECK_OK(atomap_swap(a, set_abc, &runs, &snap));
  CHECK(has_value(snap, "b", "2") && has_value(snap, "z", NULL));
  CHECK_OK(atomap_snapshot_foreach(snap, count_entry, &total));
  CHECK(total == (1 + 1) + (1 + 1) + (3 + 2));
  CHECK_OK(atomap_snapshot_release(snap));
  CHECK_OK(atomap_close(d));
}

static void remove_domain(void) {
  char name[400];
  const char* suffixes[] = {"", ".lock", ".readers"};
  size_t i;
  for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; ++i) {
    snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
    unlink(name);
  }
  rmdir(dir);
}

int main(void) {
  atomap_domain* d = NULL;
  const char* tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/atomap-c-api-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(path, sizeof path, "%s/c.atomap", dir);

  test_versions_and_codes();
  test_options();
  test_open_errors();
  test_create_and_swap(&d);
  test_reads(d);
  test_swap_retries();
  test_compare_and_set(d);
  test_threads(d);
  test_read_only();
  test_wait_and_child(d);
  test_stats_and_check(d);
  CHECK_OK(atomap_close(d));
  CHECK_OK(atomap_close(NULL));
  test_in_process_verified();

  remove_domain();
  if (failures != 0) {
    fprintf(stderr, "c_api_test: %d checks failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed (C API %d, atomap %s)\n", atomap_c_api_version(),
         atomap_version());
  return 0;
}
