// Placeholder until crash points land: the sites compile to nothing.
#ifndef ATOMAP_SRC_COMMON_CRASH_POINT_H_
#define ATOMAP_SRC_COMMON_CRASH_POINT_H_
#define ATOMAP_CRASH_POINT(site) \
  do {                           \
  } while (0)
#endif  // ATOMAP_SRC_COMMON_CRASH_POINT_H_
