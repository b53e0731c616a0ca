// atomap::Codec<T>: how a C++ type is stored as the bytes of a key or value.
//
// Contract
//  - Integral, enum and floating-point types, and trivially copyable class types without
//    padding (std::has_unique_object_representations), are stored natively: their sizeof(T)
//    bytes, in this machine's byte order. The file is therefore not portable across
//    endiannesses, and a struct's layout is part of the stored format: change it and old
//    values no longer decode (Decode returns nullopt on a size mismatch).
//  - Padding is rejected because padding bytes are unspecified: two equal values could be
//    stored as different keys. Floating point is accepted, with its byte semantics: 0.0 and
//    -0.0 are different keys, and a NaN is equal to itself as a key.
//  - Pointers are rejected, and so is std::string_view (its bytes are an address). A struct
//    holding a pointer cannot be detected: mark it with kHoldsAddress<T> = true.
//  - std::string is stored as its bytes.
//  - Any other type fails to compile (concept Codable), unless the user specialises Codec<T>
//    with Encode (returning something convertible to std::string_view, alive while used) and
//    Decode (std::string_view -> std::optional<T>).
//
// Thread safety: stateless.
//
// Usage:
//   struct Point { std::int32_t x, y; };
//   static_assert(atomap::Codable<Point>);
//   auto bytes = atomap::Codec<Point>::Encode(Point{1, 2});
//   std::optional<Point> p = atomap::Codec<Point>::Decode(std::string_view(bytes));
#ifndef ATOMAP_CODEC_H_
#define ATOMAP_CODEC_H_

#include <concepts>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace atomap {

template <class T>
struct Codec;  // no definition: a type without a codec is not Codable

// A view type is trivially copyable but its bytes are an address: meaningless in another
// process. Specialise this to true for your own such types (a struct holding a pointer).
template <class T>
inline constexpr bool kHoldsAddress = false;
template <class C, class Traits>
inline constexpr bool kHoldsAddress<std::basic_string_view<C, Traits>> = true;

template <class T>
concept StoredNatively =
    !kHoldsAddress<T> && (std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                          (std::is_class_v<T> && std::is_trivially_copyable_v<T> &&
                           std::has_unique_object_representations_v<T>));

// The sizeof(T) bytes of a natively stored value.
template <class T>
struct NativeBytes {
  char bytes[sizeof(T)];
  operator std::string_view() const { return std::string_view(bytes, sizeof(T)); }
};

template <StoredNatively T>
struct Codec<T> {
  static NativeBytes<T> Encode(const T& value) {
    NativeBytes<T> out;
    std::memcpy(out.bytes, &value, sizeof(T));
    return out;
  }
  static std::optional<T> Decode(std::string_view bytes) {
    if (bytes.size() != sizeof(T)) return std::nullopt;
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
  }
};

template <>
struct Codec<std::string> {
  static std::string_view Encode(const std::string& value) { return value; }
  static std::optional<std::string> Decode(std::string_view bytes) { return std::string(bytes); }
};

template <class T>
concept Codable = requires(const T& value, std::string_view bytes) {
  { Codec<T>::Encode(value) } -> std::convertible_to<std::string_view>;
  { Codec<T>::Decode(bytes) } -> std::same_as<std::optional<T>>;
};

}  // namespace atomap

#endif  // ATOMAP_CODEC_H_
