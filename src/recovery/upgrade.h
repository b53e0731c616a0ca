// The conversion of older domain files to this format (include/atomap/upgrade.h has the API).
//
// Format 4 is this format without combining (a zero mailbox in every slot and no record with a
// combining table, which is what this format reads as "nothing posted"), with format 4's
// allocator magic. Format 3 is format 4 with 32-byte version records (read as they are:
// hamt/node.h) and format 3's allocator magic. The rules of format 2 live here and nowhere else:
// its header is this format's first 88 bytes (the fields up to data_begin, then its checksum,
// XXH3-64 of [0, 88)); its locks were bytes of PATH itself (attach 2^40, participant slot 2^40 +
// 4096 + i), which is how an upgrade knows that no format-2 process has the file open: it holds
// format 2's attach byte exclusively.
#ifndef ATOMAP_SRC_RECOVERY_UPGRADE_H_
#define ATOMAP_SRC_RECOVERY_UPGRADE_H_

#include <cstdint>

#include "atomap/upgrade.h"
#include "file/header.h"

namespace atomap::internal {

inline constexpr std::uint32_t kFormat2 = 2;
inline constexpr std::uint32_t kFormat3 = 3;
inline constexpr std::uint32_t kFormat4 = 4;

// Format 2's header checksum: XXH3-64 of [0, 88).
std::uint64_t Format2HeaderChecksum(const Header& header);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_UPGRADE_H_
