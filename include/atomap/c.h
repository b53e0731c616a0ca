/* atomap's stable C API: plain C99 functions and opaque handles over the C++ library, for C
 * programs and for other languages' bindings (Python, Rust, Go...). Link with -latomap_c
 * (pkg-config atomap-c; CMake atomap::atomap_c); no abseil or C++ type crosses this header.
 *
 * Usage:
 *
 *   // A swap function: edits a private transaction. It may run more than once (it runs again
 *   // on the newer version if another process published first).
 *   static atomap_code set_port(atomap_txn* tx, void* user) {
 *     (void)user;
 *     return atomap_txn_set(tx, "port", 4, "8080", 4);
 *   }
 *
 *   int main(void) {
 *     atomap_domain* dom;
 *     atomap_atom* config;
 *     if (atomap_open("/var/lib/app/state.atomap", NULL, &dom) != ATOMAP_OK ||
 *         atomap_open_atom(dom, "config", 6, &config) != ATOMAP_OK ||
 *         atomap_swap(config, set_port, NULL, NULL) != ATOMAP_OK) {  // published with one CAS
 *       fprintf(stderr, "%s\n", atomap_last_error());  // names the file and what was wrong
 *       return 1;
 *     }
 *     // Read: a snapshot pins one version; views into it are valid until it is released.
 *     atomap_snapshot* snap;
 *     const void* port;
 *     size_t port_len;
 *     int found;
 *     if (atomap_load(config, &snap) != ATOMAP_OK) return 1;
 *     if (atomap_snapshot_get(snap, "port", 4, &port, &port_len, &found) == ATOMAP_OK && found) {
 *       printf("port %.*s\n", (int)port_len, (const char*)port);
 *     }
 *     atomap_snapshot_release(snap);
 *     return atomap_close(dom) == ATOMAP_OK ? 0 : 1;
 *   }
 *
 * Contract
 *  - The semantics are those of the C++ API (atomap/domain.h, atom.h, snapshot.h,
 *    transaction.h, map.h, check.h), which this library calls and nothing else.
 *  - Every fallible function returns an atomap_code. On failure, atomap_last_error() is the
 *    message (naming the file, the atom, the limit... that was wrong): a string owned by the
 *    library, private to the calling thread, valid until that thread's next failing call. A
 *    successful call leaves it as it was, so read it only after a failure.
 *  - Output parameters are written only on success (except where a function says otherwise). A
 *    NULL handle or a NULL required pointer is ATOMAP_INVALID_ARGUMENT, never a crash.
 *  - Keys, values and atom names are byte strings given as pointer and length: they may hold
 *    NUL bytes and need no terminator. A NULL pointer with length 0 is the empty string.
 *  - No exception crosses this API: anything the library throws (std::bad_alloc) is
 *    ATOMAP_INTERNAL with its message. Callbacks you pass must not throw or longjmp either.
 *  - Handles: a domain owns its atoms (atomap_atom* stays valid until atomap_close, and asking
 *    for the same name again returns the same pointer). Snapshots, transactions and iterators
 *    are freed by their own functions; atomap_close refuses (ATOMAP_FAILED_PRECONDITION, domain
 *    left open) while any snapshot or transaction of the domain is alive, and
 *    atomap_snapshot_release refuses while an iterator over it is alive.
 *  - After fork(), the child must open the domain again; the handles it inherited are inert
 *    there (operations are ATOMAP_FAILED_PRECONDITION) and the parent's state is untouched.
 *  - Structs that cross the API (atomap_options, atomap_stats, atomap_check_options,
 *    atomap_check_report) begin with `size_t struct_size`: set it to sizeof the struct (the
 *    *_init functions do), so that a program built against this header keeps working with a
 *    later library that appends fields. A struct_size the library does not know is
 *    ATOMAP_INVALID_ARGUMENT.
 *
 * Thread safety
 *  - A domain and its atoms may be used from any number of threads at once; atomap_close needs
 *    exclusive access (no other thread using the domain or its handles).
 *  - A snapshot is bound to the thread that loaded it (its pin lives in that thread's slot): it
 *    may be READ from any thread while it lives, but atomap_snapshot_release must be called on
 *    the loading thread. A release from another thread is refused with
 *    ATOMAP_FAILED_PRECONDITION and releases nothing: release it on its own thread.
 *  - A transaction belongs to the thread that began it: every call on it from another thread
 *    is ATOMAP_FAILED_PRECONDITION. An iterator is used by one thread at a time.
 *
 * ABI: ATOMAP_C_API_VERSION changes only when this header changes incompatibly; additions
 * (functions, enum values, fields appended to the sized structs) keep it. The shared library's
 * soname carries the library's major.minor version while atomap is 0.x (docs/c_api.md). */
#ifndef ATOMAP_C_H_
#define ATOMAP_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with -fvisibility=hidden: these declarations are its exports. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* The API version of this header; atomap_c_api_version() is the library's. */
#define ATOMAP_C_API_VERSION 1

/* ---- errors ------------------------------------------------------------------------------ */

/* One value per absl::StatusCode (the same numbers, also gRPC's), plus ATOMAP_LOST_RACE. */
typedef enum atomap_code {
  ATOMAP_OK = 0,
  ATOMAP_CANCELLED = 1,
  ATOMAP_UNKNOWN = 2,
  ATOMAP_INVALID_ARGUMENT = 3,
  ATOMAP_DEADLINE_EXCEEDED = 4, /* a wait or a lock timed out */
  ATOMAP_NOT_FOUND = 5,
  ATOMAP_ALREADY_EXISTS = 6,
  ATOMAP_PERMISSION_DENIED = 7,
  ATOMAP_RESOURCE_EXHAUSTED = 8, /* the domain, its atom table or its slots are full */
  ATOMAP_FAILED_PRECONDITION = 9, /* a write on a read-only domain, a handle misused... */
  ATOMAP_ABORTED = 10,
  ATOMAP_OUT_OF_RANGE = 11,
  ATOMAP_UNIMPLEMENTED = 12,
  ATOMAP_INTERNAL = 13,
  ATOMAP_UNAVAILABLE = 14,
  ATOMAP_DATA_LOSS = 15, /* a damaged file */
  ATOMAP_UNAUTHENTICATED = 16,
  /* atomap_compare_and_set lost: another writer published first (C++: atomap::IsLostRace). */
  ATOMAP_LOST_RACE = 100
} atomap_code;

/* The message of the calling thread's last failing call ("" if none yet). Owned by the
 * library; valid until this thread's next failing call. */
const char* atomap_last_error(void);
/* The code's name ("OK", "NOT_FOUND", "LOST_RACE"...; "UNKNOWN_CODE" for another value). A
 * static string. */
const char* atomap_code_name(atomap_code code);

/* ---- versions ---------------------------------------------------------------------------- */

/* The library's version, "MAJOR.MINOR.PATCH" (a static string). */
const char* atomap_version(void);
/* The library's ATOMAP_C_API_VERSION. */
int atomap_c_api_version(void);

/* ---- handles ----------------------------------------------------------------------------- */

typedef struct atomap_domain atomap_domain;
typedef struct atomap_atom atomap_atom;
typedef struct atomap_snapshot atomap_snapshot;
typedef struct atomap_txn atomap_txn;
typedef struct atomap_iter atomap_iter;

/* ---- domains ----------------------------------------------------------------------------- */

typedef enum atomap_kind {
  ATOMAP_KIND_FILE = 0,          /* a file at the path: persistent */
  ATOMAP_KIND_SHARED_MEMORY = 1, /* /dev/shm/atomap.<name>: gone at reboot */
  ATOMAP_KIND_IN_PROCESS = 2     /* anonymous memory of this process only */
} atomap_kind;

typedef enum atomap_durability {
  ATOMAP_DURABILITY_PROCESS_CRASH = 0, /* a crash of processes loses nothing (the default) */
  ATOMAP_DURABILITY_SYNC = 1           /* a swap returns once its version is on stable storage */
} atomap_durability;

/* atomap::Options (atomap/options.h says what each does). Flags are 0 or nonzero. */
typedef struct atomap_options {
  size_t struct_size; /* sizeof(atomap_options): set by atomap_options_init */
  int create_if_missing;   /* default 1 */
  int error_if_exists;     /* default 0 */
  int read_only;           /* default 0 */
  int unregistered_reads;  /* default 0 */
  int32_t kind;            /* an atomap_kind; default ATOMAP_KIND_FILE */
  int32_t durability;      /* an atomap_durability; default ATOMAP_DURABILITY_PROCESS_CRASH */
  int verify_reads;        /* default 0 */
  int follow_symlinks;     /* default 0 */
  int allow_foreign_owner; /* default 0 */
  uint32_t permissions;        /* mode of a created file; default 0600 */
  uint32_t reader_permissions; /* mode of PATH.readers; default 0 (derived from permissions) */
  uint32_t slot_capacity;      /* default 1024 */
  uint32_t reader_capacity;    /* default 1024 */
  uint32_t atom_capacity;      /* default 4096 */
  uint64_t max_size;           /* bytes; default 64 GiB */
  int64_t lock_timeout_ms;     /* default 10000; negative: wait forever */
} atomap_options;

/* Fills *options with the defaults, struct_size included. */
void atomap_options_init(atomap_options* options);

/* Opens (or creates) the domain at `path` (NUL-terminated; for ATOMAP_KIND_SHARED_MEMORY a name
 * of letters, digits, '.', '_' and '-'). `options` may be NULL: the defaults. Errors as
 * atomap::Domain::Open: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, FAILED_PRECONDITION,
 * DATA_LOSS, RESOURCE_EXHAUSTED, PERMISSION_DENIED, DEADLINE_EXCEEDED, INTERNAL. */
atomap_code atomap_open(const char* path, const atomap_options* options, atomap_domain** out);
/* Closes the domain and frees its atoms. NULL is OK. FAILED_PRECONDITION (the domain stays
 * open) while snapshots or transactions of it are alive. */
atomap_code atomap_close(atomap_domain* domain);
/* The domain's path (for shared memory, the /dev/shm path); valid until atomap_close. */
const char* atomap_domain_path(const atomap_domain* domain);
/* 1 if opened read-only; 1 if this open created the domain. 0 for NULL. */
int atomap_domain_read_only(const atomap_domain* domain);
int atomap_domain_created(const atomap_domain* domain);
/* Writes the domain's file to stable storage (fdatasync); OK at once for memory domains. */
atomap_code atomap_sync(atomap_domain* domain);

/* ---- atoms ------------------------------------------------------------------------------- */

/* The atom named by the `name_len` bytes at `name` (1 to 255), created empty if missing (on a
 * read-only domain: NOT_FOUND if missing). RESOURCE_EXHAUSTED when the atom table is full. */
atomap_code atomap_open_atom(atomap_domain* domain, const char* name, size_t name_len,
                             atomap_atom** out);
/* The atom if it exists; never creates one. NOT_FOUND naming the atom otherwise. */
atomap_code atomap_find_atom(atomap_domain* domain, const char* name, size_t name_len,
                             atomap_atom** out);
/* The atom's name (not NUL-terminated; *len set); valid until atomap_close. */
const char* atomap_atom_name(const atomap_atom* atom, size_t* len);
/* The current version number (0: never changed). */
atomap_code atomap_atom_version(const atomap_atom* atom, uint64_t* version);

/* ---- snapshots --------------------------------------------------------------------------- */

/* The current version, pinned until atomap_snapshot_release (on this thread). */
atomap_code atomap_load(const atomap_atom* atom, atomap_snapshot** out);
/* Looks `key` up. *found is 1 and *value / *value_len view the value (zero-copy, valid while
 * the snapshot lives), or *found is 0 and *value is NULL, *value_len 0. On a domain opened with
 * verify_reads the path to the key is bounds-checked: DATA_LOSS at damage. */
atomap_code atomap_snapshot_get(const atomap_snapshot* snapshot, const void* key, size_t key_len,
                                const void** value, size_t* value_len, int* found);
/* Entries, version number (0: the initial empty map) and tag of the snapshot's version. 0 for
 * NULL. */
uint64_t atomap_snapshot_size(const atomap_snapshot* snapshot);
uint64_t atomap_snapshot_version(const atomap_snapshot* snapshot);
uint64_t atomap_snapshot_tag(const atomap_snapshot* snapshot);

/* Called once per entry, in trie order (deterministic, unrelated to key order); the views are
 * valid while the snapshot lives. A non-OK return stops the walk and is what foreach returns. */
typedef atomap_code (*atomap_entry_fn)(const void* key, size_t key_len, const void* value,
                                       size_t value_len, void* user);
/* Visits every entry. With verify_reads, DATA_LOSS at the first damage (the entries before it
 * have been visited). */
atomap_code atomap_snapshot_foreach(const atomap_snapshot* snapshot, atomap_entry_fn fn,
                                    void* user);
/* An iterator over the snapshot's entries (trie order); free it before releasing the snapshot. */
atomap_code atomap_iter_new(const atomap_snapshot* snapshot, atomap_iter** out);
/* The next entry: *has is 1 and the views are set, or *has is 0 at the end (views NULL/0).
 * With verify_reads an iteration stops early at damage; atomap_snapshot_foreach reports it. */
atomap_code atomap_iter_next(atomap_iter* iter, const void** key, size_t* key_len,
                             const void** value, size_t* value_len, int* has);
/* Frees the iterator. NULL is a no-op. */
void atomap_iter_free(atomap_iter* iter);
/* Releases the snapshot's pin and frees the handle. NULL is OK. Refused, releasing nothing:
 * FAILED_PRECONDITION from another thread than the one that loaded it, or while an iterator over
 * it is alive. */
atomap_code atomap_snapshot_release(atomap_snapshot* snapshot);

/* ---- writing ----------------------------------------------------------------------------- */

/* The function atomap_swap runs on a transaction over the current version. It MAY RUN MORE THAN
 * ONCE (once per lost race): keep it free of side effects other than its edits to `tx`, and
 * never swap the same atom from inside it. `tx` is valid only during the call. Returning
 * anything but ATOMAP_OK abandons the swap: nothing is published. */
typedef atomap_code (*atomap_swap_fn)(atomap_txn* tx, void* user);

/* Runs fn and publishes its edits atomically, retrying on a lost race. If `out` is not NULL,
 * *out is the published version (a snapshot to release). If fn returns a non-OK code, the atom
 * is unchanged and swap returns that code; atomap_last_error() is then the message of the
 * failing call fn made, if it made one during this attempt. RESOURCE_EXHAUSTED when the domain
 * is full; FAILED_PRECONDITION on a read-only domain. */
atomap_code atomap_swap(atomap_atom* atom, atomap_swap_fn fn, void* user, atomap_snapshot** out);

/* Edits. Keys are at most 64 KiB and values at most 64 MiB (INVALID_ARGUMENT, nothing changed).
 * On RESOURCE_EXHAUSTED or DATA_LOSS the whole transaction is abandoned and every later edit
 * is FAILED_PRECONDITION. */
atomap_code atomap_txn_set(atomap_txn* tx, const void* key, size_t key_len, const void* value,
                           size_t value_len);
/* *existed (may be NULL) is 1 if the key was present. */
atomap_code atomap_txn_erase(atomap_txn* tx, const void* key, size_t key_len, int* existed);
/* As atomap_snapshot_get, seeing the transaction's own writes; the view is valid until the next
 * write of the same key or the end of the transaction. */
atomap_code atomap_txn_get(const atomap_txn* tx, const void* key, size_t key_len,
                           const void** value, size_t* value_len, int* found);
/* Entries of the transaction's map now. 0 for NULL, a spent transaction, or one of another
 * thread (atomap_txn_tag likewise). */
uint64_t atomap_txn_size(const atomap_txn* tx);

typedef struct atomap_entry {
  const void* key;
  size_t key_len;
  const void* value;
  size_t value_len;
} atomap_entry;
/* Sets every entry (of equal keys the last wins); all sizes are checked before anything is
 * written. Into an empty map it builds the trie bottom up: the fast way to load many. */
atomap_code atomap_txn_set_many(atomap_txn* tx, const atomap_entry* entries, size_t count);
/* The 64-bit tag the published version will carry (atomap::Transaction::set_tag). */
atomap_code atomap_txn_set_tag(atomap_txn* tx, uint64_t tag);
uint64_t atomap_txn_tag(const atomap_txn* tx);

/* Swap in two halves. begin: a transaction over `base`'s version (base may be released
 * afterwards). compare_and_set: publishes tx if the atom still holds the version it began from
 * (*out, if not NULL, the published version); ATOMAP_LOST_RACE if another writer published
 * first (tx's work is freed: begin again from a newer snapshot). Either way tx is spent: every
 * later call but atomap_txn_free on it is FAILED_PRECONDITION. */
atomap_code atomap_begin(atomap_atom* atom, const atomap_snapshot* base, atomap_txn** out);
atomap_code atomap_compare_and_set(atomap_atom* atom, atomap_txn* tx, atomap_snapshot** out);
/* Frees a transaction from atomap_begin, abandoning it if it was not published. NULL is OK.
 * FAILED_PRECONDITION, freeing nothing, from another thread than the one that began it, or for
 * the transaction of a swap function (it is not yours to free). */
atomap_code atomap_txn_free(atomap_txn* tx);

/* ---- waiting ----------------------------------------------------------------------------- */

/* Blocks until the atom's version differs from `seen_version`, then *out is the newer version
 * (a snapshot to release). DEADLINE_EXCEEDED after `timeout_ms` milliseconds without a change;
 * a negative timeout waits forever. */
atomap_code atomap_wait_for_change(const atomap_atom* atom, uint64_t seen_version,
                                   int64_t timeout_ms, atomap_snapshot** out);

/* ---- stats and check --------------------------------------------------------------------- */

/* atomap::DomainStats and DomainInfo figures (atomap/domain.h says what each means). */
typedef struct atomap_stats {
  size_t struct_size; /* set by atomap_stats_init */
  uint64_t global_epoch;
  uint64_t epoch_advances;
  uint32_t participants; /* writers + readers */
  uint32_t writers;
  uint32_t readers;
  uint32_t reader_capacity;
  uint32_t dead_participants;
  uint32_t dead_readers;
  int any_pinned;
  int oldest_pinned_is_reader;
  uint64_t oldest_pinned_epoch;
  uint32_t oldest_pinned_slot;
  uint32_t oldest_pinned_pid;
  uint64_t oldest_pin_age_us;
  uint64_t oldest_pin_retained_bytes;
  uint64_t pending_garbage_blocks;
  uint64_t pending_garbage_bytes;
  uint64_t data_bytes;
  uint64_t live_bytes;
  uint64_t free_bytes;
  uint64_t unused_bytes;
  uint64_t size;     /* bytes of the domain now */
  uint64_t max_size; /* the most it may grow to */
  uint32_t slot_capacity;
  uint32_t atom_count;
  uint32_t atom_capacity;
  int damaged; /* 1: a space list is damaged (stats returned DATA_LOSS) */
} atomap_stats;

void atomap_stats_init(atomap_stats* stats);
/* Fills *stats (whose struct_size the caller set). DATA_LOSS naming the damaged list if the
 * space lists are damaged: the figures are filled all the same (from the lists' sound part). */
atomap_code atomap_stats_get(const atomap_domain* domain, atomap_stats* stats);

typedef struct atomap_check_options {
  size_t struct_size;          /* set by atomap_check_options_init */
  int repair;                  /* free leaked blocks (needs the domain to itself) */
  int others_idle;             /* atomap::CheckOptions::others_idle */
  int64_t wait_for_exclusive_ms; /* how long to try to have the domain to itself; default 0 */
  /* If not NULL, called once per problem found, with one NUL-terminated sentence. */
  void (*on_problem)(const char* problem, void* user);
  void* user;
} atomap_check_options;

typedef struct atomap_check_report {
  size_t struct_size; /* set by atomap_check_report_init */
  int ok;             /* 1: no problem found */
  uint64_t problems;  /* how many */
  int space_checked;  /* 0: others were attached, only the pinned versions were checked */
  uint32_t atoms_checked;
  uint32_t others_attached;
  uint64_t reachable_bytes;
  uint64_t free_bytes;
  uint64_t pending_bytes;
  uint64_t unused_bytes;
  uint64_t in_flight_bytes;
  uint64_t leaked_bytes;
} atomap_check_report;

void atomap_check_options_init(atomap_check_options* options);
void atomap_check_report_init(atomap_check_report* report);
/* Verifies the domain (atomap/check.h): problems found are data in *report, not errors.
 * `options` may be NULL (the defaults). Errors: FAILED_PRECONDITION (repair on a read-only
 * domain or with others attached, ...). Needs exclusive use of the handle meanwhile. */
atomap_code atomap_check(atomap_domain* domain, const atomap_check_options* options,
                         atomap_check_report* report);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATOMAP_C_H_ */
