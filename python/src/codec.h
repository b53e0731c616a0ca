// The Python side of atomap::Codec (include/atomap/codec.h): how a typed atom's keys and values
// become the bytes the C++ library stores, byte for byte what Codec<T>::Encode writes.
//
// Invariants
//  (C1) kStr is Codec<std::string>: the UTF-8 bytes of the str (surrogateescape, so that any
//       stored bytes decode and encode back unchanged). The integer and float codecs are
//       Codec<T> for T = uint64_t, int64_t, uint32_t, int32_t, double: sizeof(T) bytes in this
//       machine's byte order (struct's '=Q', '=q', '=I', '=i', '=d').
//  (C2) Decode returns a null object for bytes of the wrong size (as Codec<T>::Decode's nullopt):
//       the typed readers then treat the entry as absent, as TypedMap does.
//  (C3) Encode raises TypeError for a value of the wrong type and OverflowError for an integer
//       out of range; it never truncates.
//
// Thread safety: Encode and Decode need the GIL (they touch Python objects).
#ifndef ATOMAP_PYTHON_SRC_CODEC_H_
#define ATOMAP_PYTHON_SRC_CODEC_H_

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>

namespace atomap::python {

enum class CodecKind { kBytes, kStr, kU64, kI64, kU32, kI32, kF64 };

// (C1), (C3).
std::string Encode(CodecKind codec, pybind11::handle value);
// (C1), (C2): a null object when the bytes are not a `codec` value.
pybind11::object Decode(CodecKind codec, std::string_view bytes);
// Decode, raising ValueError naming the codec where Decode would give null.
pybind11::object DecodeOrThrow(CodecKind codec, std::string_view bytes);

const char* CodecName(CodecKind codec);

// Adds the Codec enum and the constants BYTES, STR, U64, I64, U32, I32, F64 to `module`.
void BindCodecs(pybind11::module_& module);

}  // namespace atomap::python

#endif  // ATOMAP_PYTHON_SRC_CODEC_H_
